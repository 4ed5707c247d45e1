/* CPython 3.11 only: the fields of an interpreter frame that the call hooks read,
 * mirroring Include/internal/pycore_frame.h of 3.11 (struct _PyInterpreterFrame and
 * struct _frame, the PyFrameObject). Private layout: module.c's frame_probe() lets
 * buffer.py check it at import, and sn_frames_mirror stays 0 (public path) unless it
 * matched. */
#if PY_VERSION_HEX < 0x030B0000 || PY_VERSION_HEX >= 0x030C0000
#error "frame_311.h is for CPython 3.11 only"
#endif
#define SN_FRAME_MIRROR "CPython 3.11 Include/internal/pycore_frame.h"

typedef struct sn_iframe {
    PyObject *f_func;
    PyObject *f_globals;
    PyObject *f_builtins;
    PyObject *f_locals;
    PyCodeObject *f_code;
    PyFrameObject *frame_obj;
    struct sn_iframe *previous;
    void *prev_instr;
    int stacktop;
    char is_entry;
    char owner;
    PyObject *localsplus[1];
} sn_iframe;

typedef struct {
    PyObject_HEAD
    PyFrameObject *f_back;
    sn_iframe *f_frame;
    PyObject *f_trace;
    int f_lineno;
    char f_trace_lines;
    char f_trace_opcodes;
    char f_fast_as_locals;
} sn_frameobject;

/* The running frame, as the thread state (public struct _ts) points at it. */
static inline sn_iframe *sn_current_frame(void) {
    return (sn_iframe *)PyThreadState_GET()->cframe->current_frame;
}

/* Its code object (borrowed). */
static inline PyObject *sn_frame_code(sn_iframe *f) { return (PyObject *)f->f_code; }

/* Fast local i (borrowed), NULL when unbound. */
static inline PyObject *sn_frame_local(sn_iframe *f, Py_ssize_t i) { return f->localsplus[i]; }
