/* CPython 3.12 only: the fields of an interpreter frame that the call hooks read,
 * mirroring Include/internal/pycore_frame.h of 3.12 (struct _PyInterpreterFrame).
 * Private layout: module.c's frame_probe() lets buffer.py check it at import, and
 * sn_frames_mirror stays 0 (public path) unless it matched. */
#if PY_VERSION_HEX < 0x030C0000 || PY_VERSION_HEX >= 0x030D0000
#error "frame_312.h is for CPython 3.12 only"
#endif
#define SN_FRAME_MIRROR "CPython 3.12 Include/internal/pycore_frame.h"

typedef struct sn_iframe {
    PyCodeObject *f_code;
    struct sn_iframe *previous;
    PyObject *f_funcobj;
    PyObject *f_globals;
    PyObject *f_builtins;
    PyObject *f_locals;
    PyFrameObject *frame_obj;
    void *prev_instr;
    int stacktop;
    uint16_t return_offset;
    char owner;
    PyObject *localsplus[1];
} sn_iframe;

/* The running frame, as the thread state (public struct _ts) points at it. */
static inline sn_iframe *sn_current_frame(void) {
    return (sn_iframe *)PyThreadState_GET()->cframe->current_frame;
}

/* Its code object (borrowed). */
static inline PyObject *sn_frame_code(sn_iframe *f) { return (PyObject *)f->f_code; }

/* Fast local i (borrowed), NULL when unbound. */
static inline PyObject *sn_frame_local(sn_iframe *f, Py_ssize_t i) { return f->localsplus[i]; }
