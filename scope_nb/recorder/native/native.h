/* What the C parts of the recorder share: the Col column type, the clock, the fault
 * report, the thread-buffer helpers, the interpreter-frame mirror of this Python.
 * Compiled into one extension module, scope_nb.recorder._fasthooks, from one C file
 * per type family: buffers.c (Col, thread buffers), hooks.c (call hooks), locks.c,
 * queues.c, decoder.c (the read side's decode loop), pairing.c and callstats.c (its
 * pairing of calls and per-function call statistics) and module.c. */
#ifndef SCOPE_NB_NATIVE_H
#define SCOPE_NB_NATIVE_H
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <frameobject.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#if PY_VERSION_HEX < 0x030B0000
#error "scope_nb._fasthooks needs CPython 3.11 or later"
#endif
/* The hot paths rely on the GIL to guard their caches; setup.py does not build the
 * extension on a free-threaded Python, and buffer.backend_status() says so. */
#ifdef Py_GIL_DISABLED
#error "scope_nb._fasthooks needs the GIL (free-threaded builds use the Python callbacks)"
#endif

/* The private interpreter-frame layout of exactly this minor version, when there is a
 * mirror of it (none for a newer Python, or a build whose frames differ): the call
 * hooks read arguments through it only once frame_probe() checked it (sn_frames_mirror),
 * otherwise through PyFrame_GetVar (3.12+) or the Python args_of. */
#if PY_VERSION_HEX < 0x030C0000
#include "frame_311.h"
#elif PY_VERSION_HEX < 0x030D0000
#include "frame_312.h"
#elif PY_VERSION_HEX < 0x030E0000
#include "frame_313.h"
#elif PY_VERSION_HEX < 0x030F0000 && !defined(Py_STACKREF_DEBUG)
#include "frame_314.h"
#elif PY_VERSION_HEX >= 0x030F0000 && PY_VERSION_HEX < 0x03100000 && !defined(Py_STACKREF_DEBUG)
#include "frame_315.h"
#endif

/* 1 once buffer.py's self-test found the frame mirror right (module.c, use_frame_mirror). */
extern int sn_frames_mirror;

/* time.perf_counter_ns(): on Linux that is CLOCK_MONOTONIC, read here directly (the
 * clock is taken for every lock and queue event). */
static inline int64_t sn_perf_ns(void) {
#if defined(__linux__)
    struct timespec ts;
    if (clock_gettime(CLOCK_MONOTONIC, &ts) == 0)
        return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
#endif
#if PY_VERSION_HEX >= 0x030D0000
    PyTime_t t;
    (void)PyTime_PerfCounterRaw(&t);
    return (int64_t)t;
#else
    return (int64_t)_PyTime_GetPerfCounter();
#endif
}

/* The exception being raised, taken out of the error indicator (new reference or
 * NULL), and put back (stolen). */
static inline PyObject *sn_err_take(void) {
#if PY_VERSION_HEX >= 0x030C0000
    return PyErr_GetRaisedException();
#else
    PyObject *et, *ev, *tb;
    PyErr_Fetch(&et, &ev, &tb);
    PyErr_NormalizeException(&et, &ev, &tb);
    if (tb != NULL && ev != NULL)
        PyException_SetTraceback(ev, tb);
    Py_XDECREF(et);
    Py_XDECREF(tb);
    return ev;
#endif
}

static inline void sn_err_give(PyObject *exc) {
#if PY_VERSION_HEX >= 0x030C0000
    PyErr_SetRaisedException(exc);
#else
    PyErr_Restore(Py_NewRef((PyObject *)Py_TYPE(exc)), exc, PyException_GetTraceback(exc));
#endif
}

typedef struct {
    PyObject_HEAD
    char *data;
    Py_ssize_t len;
    Py_ssize_t cap;
    Py_ssize_t exports;
    int wide; /* 1: int64 'q'; 0: uint32 'I' */
} ColObject;

extern PyTypeObject ColType;
extern PyObject *sn_array_type; /* array.array */

#define COL_ITEMSIZE(c) ((c)->wide ? 8 : 4)

int col_grow(ColObject *c);

static inline int col_push_q(ColObject *c, int64_t v) {
    if (c->len == c->cap && col_grow(c) < 0)
        return -1;
    ((int64_t *)c->data)[c->len++] = v;
    return 0;
}

static inline int col_push_I(ColObject *c, uint32_t v) {
    if (c->len == c->cap && col_grow(c) < 0)
        return -1;
    ((uint32_t *)c->data)[c->len++] = v;
    return 0;
}


/* The object slot at byte offset `off` of `o` (offsets from sn_member_offset). */
#define SN_SLOT(o, off) (*(PyObject **)((char *)(o) + (off)))

/* values.MAX_ATOMIC_STR: longer text is not kept by reference, so that a trace never
 * pins a huge string (Formatter.capture keeps a cut copy). */
#define SN_MAX_ATOMIC_STR 4096

/* values.kept_as_is: an atomic value (values.ATOMIC) that a buffer may keep by reference. */
static inline int sn_kept_as_is(PyObject *v) {
    PyTypeObject *t = Py_TYPE(v);
    if (t == &PyUnicode_Type)
        return PyUnicode_GET_LENGTH(v) <= SN_MAX_ATOMIC_STR;
    if (t == &PyBytes_Type)
        return PyBytes_GET_SIZE(v) <= SN_MAX_ATOMIC_STR;
    return t == &PyLong_Type || v == Py_None || t == &PyFloat_Type || t == &PyBool_Type || t == &PyComplex_Type;
}

/* A failure inside the recorder, reported through fault_fn(where, exc); returns None,
 * or NULL when the exception is not an Exception (it propagates). */
PyObject *sn_report_fault(PyObject *fault_fn, PyObject *where);

/* The offset of slot `name` (an object slot) in instances of `type`; -1 and TypeError
 * when it is not one. */
int sn_member_offset(PyObject *type, const char *name, Py_ssize_t *off);

/* The C function of method `name` of `type` when it is a plain method descriptor with
 * these flags, called then without a lookup or an argument tuple; else NULL. */
PyCFunction sn_c_method(PyTypeObject *type, PyObject *name, int flags);

/* buffers.c: a thread's buffer (record/buffer.py ThreadBuffer) as the C hot paths
 * of locks and queues use it: found per thread (cached), its running actor, and an
 * event appended as session.push does. */
#define SN_SEEN 8
typedef struct {
    PyObject *local, *new_buffer, *buffer_type, *current_actor, *bufs;
    Py_ssize_t chunk, off_ts, off_ks, off_vals, off_loopy, off_actor, off_on, off_ident, off_task;
    /* the buffers of the last threads seen, by thread state (its address and its id,
     * which no later thread state reuses); b borrowed from `bufs`. The GIL guards it. */
    struct {
        PyThreadState *ts;
        uint64_t id;
        PyObject *b;
    } seen[SN_SEEN];
    unsigned next;
} SnBuffers;

int sn_buffers_init(SnBuffers *s, PyObject *local, PyObject *new_buffer, PyObject *buffer_type,
                    PyObject *current_actor, Py_ssize_t chunk);
int sn_buffers_traverse(SnBuffers *s, visitproc visit, void *arg);
void sn_buffers_clear(SnBuffers *s);
/* This thread's buffer (borrowed), made through new_buffer() on first use. */
PyObject *sn_buffer(SnBuffers *s);
/* The running actor (new reference): the buffer's own, or current_actor(b) when an
 * event loop runs in the thread. */
PyObject *sn_actor(SnBuffers *s, PyObject *b);
/* Append one event (ev is not stolen) stamped t; seal the chunk when full. */
int sn_push(SnBuffers *s, PyObject *b, uint32_t k, PyObject *ev, int64_t t);
/* 1 when calls of the buffer's thread are recorded (its `on` slot), 0 if not. */
int sn_buffer_on(SnBuffers *s, PyObject *b);

/* queues.c: the fields of a MessageEvent, borrowed, for the decoder (a number
 * that is None is INT64_MIN). 1 when v is one, else 0. */
typedef struct {
    PyObject *actor, *queue, *message;
    int64_t msg_id, waited, depth;
} SnMessage;
int sn_message_view(PyObject *v, SnMessage *m);

/* Each file adds its types to the module (module.c calls them). */
int sn_add_col_type(PyObject *module);
int sn_add_hooks_type(PyObject *module);
int sn_add_decoder_type(PyObject *module);
int sn_add_pairing(PyObject *module);
int sn_add_call_stats(PyObject *module);

/* The columns pair_calls returns (pairing.c), in order, as call_stats reads them
 * (callstats.c). */
enum {
    SN_PAIR_KEY,
    SN_PAIR_KIND,
    SN_PAIR_ACTOR,
    SN_PAIR_DEPTH,
    SN_PAIR_PARENT,
    SN_PAIR_CALL,
    SN_PAIR_DURATION,
    SN_PAIR_LABEL,
    SN_PAIR_RICH,
    SN_PAIR_COLUMNS
};
int sn_add_lock_types(PyObject *module);
int sn_add_queue_types(PyObject *module);

#endif
