/* CPython 3.14 only (with the GIL): the fields of an interpreter frame that the call
 * hooks read, mirroring Include/internal/pycore_interpframe_structs.h of 3.14 (struct
 * _PyInterpreterFrame, which Include/internal/pycore_frame.h includes) and the tagging
 * of Include/internal/pycore_stackref.h: the code object and the locals are
 * _PyStackRef, a pointer whose low bit Py_TAG_REFCNT marks a deferred (borrowed)
 * reference; the bits Py_TAG_REFCNT alone are the NULL reference, both low bits set
 * (Py_INT_TAG) a tagged integer, which no Python-visible local holds. Private layout:
 * module.c's frame_probe() lets buffer.py check it at import, and sn_frames_mirror
 * stays 0 (public path) unless it matched. */
#if PY_VERSION_HEX < 0x030E0000 || PY_VERSION_HEX >= 0x030F0000
#error "frame_314.h is for CPython 3.14 only"
#endif
#if defined(Py_GIL_DISABLED) || defined(Py_STACKREF_DEBUG)
#error "frame_314.h mirrors the default build (GIL, no Py_STACKREF_DEBUG)"
#endif
#define SN_FRAME_MIRROR "CPython 3.14 Include/internal/pycore_interpframe_structs.h, pycore_stackref.h"

typedef struct {
    uintptr_t bits;
} sn_stackref;

#define SN_TAG_REFCNT ((uintptr_t)1)
#define SN_TAG_INT ((uintptr_t)3)

typedef struct sn_iframe {
    sn_stackref f_executable;
    struct sn_iframe *previous;
    sn_stackref f_funcobj;
    PyObject *f_globals;
    PyObject *f_builtins;
    PyObject *f_locals;
    PyFrameObject *frame_obj;
    void *instr_ptr;
    sn_stackref *stackpointer;
    uint16_t return_offset;
    char owner;
    uint8_t visited;
    sn_stackref localsplus[1];
} sn_iframe;

/* The running frame, as the thread state (public struct _ts) points at it. */
static inline sn_iframe *sn_current_frame(void) { return (sn_iframe *)PyThreadState_GET()->current_frame; }

/* Its code object (borrowed). */
static inline PyObject *sn_frame_code(sn_iframe *f) {
    return (PyObject *)(f->f_executable.bits & ~SN_TAG_REFCNT);
}

/* Fast local i (borrowed), NULL when unbound (or a tagged integer). */
static inline PyObject *sn_frame_local(sn_iframe *f, Py_ssize_t i) {
    uintptr_t bits = f->localsplus[i].bits;
    if ((bits & SN_TAG_INT) == SN_TAG_INT || bits == SN_TAG_REFCNT)
        return NULL;
    return (PyObject *)(bits & ~SN_TAG_REFCNT);
}
