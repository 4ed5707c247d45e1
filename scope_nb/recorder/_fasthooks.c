/* The hot call callbacks of scope_nb.recorder.backends, in C.
 *
 * Optional: when this module does not import (or SCOPE_NB_PURE is set), the Python
 * closures of backends.py run instead and record exactly the same events.
 *
 * - Col: a growable column of int64 ('q') or uint32 ('I') with append(), len(),
 *   indexing, slicing to array.array and the buffer protocol; ThreadBuffer.ts / .ks
 *   use it so that C appends are plain stores.
 * - Decoder: the per-event loop of decode.decode() (buffered events to detail text and
 *   sparse columns), with the same output; decode.py keeps the Python loop as reference.
 * - LockCore / LockHub (_fastlocks.c): the traced Lock / RLock's hot paths.
 * - QueueHook (_fastqueues.c): a FIFO queue's _put / _get while recording.
 * - _fastevents.c: a thread's buffer as those two append to it.
 * - Hooks: one per recording. `on_start` / `on_return` are the sys.monitoring
 *   PY_START / PY_RETURN callbacks (3.12+); `install_profile()` installs a C profile
 *   function (3.11). Sites are looked up by code pointer in a table of our own (filled
 *   from Recorder.site_by_code on first sight); the thread's buffer is cached per OS
 *   thread and recording. Anything unusual goes to the Python callbacks, which are
 *   the reference behaviour.
 */
#include "_fasthooks.h"

/* ------------------------------------------------------------------------ */
/* Interpreter frames: only the fields read here (code object, fast locals).  */

#if PY_VERSION_HEX >= 0x030D0000
typedef struct sn_iframe {
    PyObject *f_executable;
    struct sn_iframe *previous;
    PyObject *f_funcobj;
    PyObject *f_globals;
    PyObject *f_builtins;
    PyObject *f_locals;
    PyFrameObject *frame_obj;
    void *instr_ptr;
    int stacktop;
    uint16_t return_offset;
    char owner;
    PyObject *localsplus[1];
} sn_iframe;
#define SN_FRAME_CODE(f) ((f)->f_executable)
static inline sn_iframe *sn_current_frame(void) {
    return (sn_iframe *)PyThreadState_GET()->current_frame;
}
#elif PY_VERSION_HEX >= 0x030C0000
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
#define SN_FRAME_CODE(f) ((PyObject *)(f)->f_code)
static inline sn_iframe *sn_current_frame(void) {
    return (sn_iframe *)PyThreadState_GET()->cframe->current_frame;
}
#else /* 3.11 */
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
#define SN_FRAME_CODE(f) ((PyObject *)(f)->f_code)
/* PyFrameObject of 3.11 (Include/internal/pycore_frame.h, struct _frame) */
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
#endif


/* ------------------------------------------------------------------------ */
/* Col                                                                        */

static PyObject *array_type; /* array.array */

int col_grow(ColObject *c) {
    if (c->exports > 0) {
        PyErr_SetString(PyExc_BufferError, "cannot resize a column that is exporting buffers");
        return -1;
    }
    Py_ssize_t cap = c->cap ? c->cap * 2 : 256;
    char *d = PyMem_Realloc(c->data, (size_t)cap * COL_ITEMSIZE(c));
    if (d == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    c->data = d;
    c->cap = cap;
    return 0;
}

static int col_push_obj(ColObject *c, PyObject *x) {
    if (c->wide) {
        long long v = PyLong_AsLongLong(x);
        if (v == -1 && PyErr_Occurred())
            return -1;
        return col_push_q(c, (int64_t)v);
    }
    if (!PyLong_Check(x)) {
        PyErr_Format(PyExc_TypeError, "'%.200s' object cannot be interpreted as an integer", Py_TYPE(x)->tp_name);
        return -1;
    }
    unsigned long v = PyLong_AsUnsignedLong(x);
    if (v == (unsigned long)-1 && PyErr_Occurred())
        return -1;
    if (v > 0xFFFFFFFFUL) {
        PyErr_SetString(PyExc_OverflowError, "unsigned int is greater than maximum");
        return -1;
    }
    return col_push_I(c, (uint32_t)v);
}

static PyObject *col_new(PyTypeObject *type, PyObject *args, PyObject *kwds) {
    const char *tc;
    if (!PyArg_ParseTuple(args, "s:Col", &tc))
        return NULL;
    if (strcmp(tc, "q") != 0 && strcmp(tc, "I") != 0) {
        PyErr_SetString(PyExc_ValueError, "Col typecode must be 'q' or 'I'");
        return NULL;
    }
    ColObject *c = (ColObject *)type->tp_alloc(type, 0);
    if (c == NULL)
        return NULL;
    c->wide = tc[0] == 'q';
    return (PyObject *)c;
}

static void col_dealloc(ColObject *c) {
    PyMem_Free(c->data);
    Py_TYPE(c)->tp_free((PyObject *)c);
}

static PyObject *col_append(ColObject *c, PyObject *x) {
    if (col_push_obj(c, x) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static Py_ssize_t col_length(ColObject *c) { return c->len; }

static PyObject *col_item(ColObject *c, Py_ssize_t i) {
    if (i < 0 || i >= c->len) {
        PyErr_SetString(PyExc_IndexError, "column index out of range");
        return NULL;
    }
    if (c->wide)
        return PyLong_FromLongLong(((int64_t *)c->data)[i]);
    return PyLong_FromUnsignedLong(((uint32_t *)c->data)[i]);
}

/* a slice as array.array of the same typecode */
static PyObject *col_to_array(ColObject *c, Py_ssize_t start, Py_ssize_t n) {
    PyObject *raw = PyBytes_FromStringAndSize(n ? c->data + start * COL_ITEMSIZE(c) : NULL, n * COL_ITEMSIZE(c));
    if (raw == NULL)
        return NULL;
    PyObject *out = PyObject_CallFunction(array_type, "sO", c->wide ? "q" : "I", raw);
    Py_DECREF(raw);
    return out;
}

static PyObject *col_subscript(ColObject *c, PyObject *key) {
    if (PySlice_Check(key)) {
        Py_ssize_t start, stop, step;
        if (PySlice_Unpack(key, &start, &stop, &step) < 0)
            return NULL;
        Py_ssize_t n = PySlice_AdjustIndices(c->len, &start, &stop, step);
        if (step == 1)
            return col_to_array(c, start, n);
        PyObject *all = col_to_array(c, 0, c->len);
        if (all == NULL)
            return NULL;
        PyObject *out = PyObject_GetItem(all, key);
        Py_DECREF(all);
        return out;
    }
    Py_ssize_t i = PyNumber_AsSsize_t(key, PyExc_IndexError);
    if (i == -1 && PyErr_Occurred())
        return NULL;
    if (i < 0)
        i += c->len;
    return col_item(c, i);
}

static int col_getbuffer(ColObject *c, Py_buffer *view, int flags) {
    if (PyBuffer_FillInfo(view, (PyObject *)c, c->data ? c->data : (void *)"", c->len * COL_ITEMSIZE(c), 1, flags) < 0)
        return -1;
    view->itemsize = COL_ITEMSIZE(c);
    if (flags & PyBUF_FORMAT)
        view->format = c->wide ? "q" : "I";
    if (flags & PyBUF_ND) {
        view->ndim = 1;
        view->shape = &c->len;
    }
    if ((flags & PyBUF_STRIDES) == PyBUF_STRIDES)
        view->strides = &view->itemsize;
    c->exports++;
    return 0;
}

static void col_releasebuffer(ColObject *c, Py_buffer *view) { c->exports--; }

static PyObject *col_typecode(ColObject *c, void *closure) { return PyUnicode_FromString(c->wide ? "q" : "I"); }

static PyObject *col_repr(ColObject *c) {
    PyObject *a = col_to_array(c, 0, c->len);
    if (a == NULL)
        return NULL;
    PyObject *r = PyObject_Repr(a);
    Py_DECREF(a);
    return r;
}

static PyMethodDef col_methods[] = {
    {"append", (PyCFunction)col_append, METH_O, "Append one integer."},
    {NULL},
};
static PyGetSetDef col_getset[] = {
    {"typecode", (getter)col_typecode, NULL, "'q' or 'I'", NULL},
    {NULL},
};
static PySequenceMethods col_as_sequence = {
    .sq_length = (lenfunc)col_length,
    .sq_item = (ssizeargfunc)col_item,
};
static PyMappingMethods col_as_mapping = {
    .mp_length = (lenfunc)col_length,
    .mp_subscript = (binaryfunc)col_subscript,
};
static PyBufferProcs col_as_buffer = {
    .bf_getbuffer = (getbufferproc)col_getbuffer,
    .bf_releasebuffer = (releasebufferproc)col_releasebuffer,
};

PyTypeObject ColType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "scope_nb.recorder._fasthooks.Col",
    .tp_doc = "A growable int64 ('q') or uint32 ('I') column: append, len, index, slice (to array.array), buffer protocol.",
    .tp_basicsize = sizeof(ColObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = col_new,
    .tp_dealloc = (destructor)col_dealloc,
    .tp_repr = (reprfunc)col_repr,
    .tp_methods = col_methods,
    .tp_getset = col_getset,
    .tp_as_sequence = &col_as_sequence,
    .tp_as_mapping = &col_as_mapping,
    .tp_as_buffer = &col_as_buffer,
};

/* ------------------------------------------------------------------------ */
/* Sites                                                                      */

enum { ARGS_NONE = 0, ARGS_FAST = 1, ARGS_PY = 2 };

typedef struct {
    PyObject *site; /* strong; keeps the code object alive */
    uint32_t kcall, kret, ksuspend, kresume;
    int args;       /* ARGS_* */
    int is_gen;
    int plain_single;
    Py_ssize_t nargs;
    Py_ssize_t *idx; /* fast-local index of each argument */
    char *secret;    /* per argument */
} SiteInfo;

typedef struct {
    void *key;
    SiteInfo *info;     /* NULL: a negative entry */
    Py_ssize_t stamp;   /* negative entries: len(site_by_code) when it was made */
    PyObject *never;    /* the code (strong, so its address is not reused) when the Python
                           hook saw it in trace-everything mode and gave it no site: not
                           user code, or ours; it never will have one */
} Slot;

/* ------------------------------------------------------------------------ */
/* Hooks                                                                      */

typedef struct {
    PyObject_HEAD
    SnBuffers bufs;
    PyObject *rec, *sync_task, *current_task, *fault, *cap, *args_of, *sites;
    PyObject *py_start, *py_return, *py_yield, *py_resume, *py_hook, *exc_tracer, *disable, *redacted;
    PyObject *return_ops, *exc_pending;
    int capture_args;
    int yield_op, resume_op; /* 3.11: generators' YIELD_VALUE and RESUME opcodes (-1: unknown) */
    Slot *table;
    Py_ssize_t size, used; /* size: a power of two */
} HooksObject;

static PyTypeObject HooksType;
static PyObject *s_seal, *s_call, *s_return, *s_yield, *s_resume, *s_trace_everything, *s_co_varnames, *s_co_cellvars;
static PyObject *s_site_kcall, *s_site_kret, *s_site_ksuspend, *s_site_kresume, *s_site_is_gen, *s_site_plain_single, *s_site_getter, *s_site_argnames, *s_site_secret;

static inline Py_ssize_t hash_ptr(void *p, Py_ssize_t mask) {
    uint64_t x = (uint64_t)(uintptr_t)p;
    x = (x >> 4) * 0x9E3779B97F4A7C15ULL;
    return (Py_ssize_t)(x >> 32) & mask;
}

static Slot *table_find(HooksObject *h, void *key) {
    Py_ssize_t mask = h->size - 1, i = hash_ptr(key, mask);
    for (;;) {
        Slot *s = &h->table[i];
        if (s->key == key || s->key == NULL)
            return s;
        i = (i + 1) & mask;
    }
}

static int table_grow(HooksObject *h) {
    Py_ssize_t old = h->size, size = old ? old * 2 : 64;
    Slot *t = PyMem_Calloc((size_t)size, sizeof(Slot));
    if (t == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    Slot *prev = h->table;
    h->table = t;
    h->size = size;
    for (Py_ssize_t i = 0; i < old; i++)
        if (prev[i].key != NULL)
            *table_find(h, prev[i].key) = prev[i];
    PyMem_Free(prev);
    return 0;
}

static void siteinfo_free(SiteInfo *si) {
    if (si == NULL)
        return;
    Py_XDECREF(si->site);
    PyMem_Free(si->idx);
    PyMem_Free(si->secret);
    PyMem_Free(si);
}

static int attr_u32(PyObject *o, PyObject *name, uint32_t *out) {
    PyObject *v = PyObject_GetAttr(o, name);
    if (v == NULL)
        return -1;
    unsigned long x = PyLong_AsUnsignedLong(v);
    Py_DECREF(v);
    if (x == (unsigned long)-1 && PyErr_Occurred())
        return -1;
    *out = (uint32_t)x;
    return 0;
}

static int attr_truth(PyObject *o, PyObject *name) {
    PyObject *v = PyObject_GetAttr(o, name);
    if (v == NULL)
        return -1;
    int t = PyObject_IsTrue(v);
    Py_DECREF(v);
    return t;
}

/* What the hot path needs of a Site, computed once. */
static SiteInfo *siteinfo_make(HooksObject *h, PyObject *code, PyObject *site) {
    SiteInfo *si = PyMem_Calloc(1, sizeof(SiteInfo));
    PyObject *getter = NULL, *names = NULL, *secret = NULL, *varnames = NULL, *cellvars = NULL;
    if (si == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    si->site = Py_NewRef(site);
    if (attr_u32(site, s_site_kcall, &si->kcall) < 0 || attr_u32(site, s_site_kret, &si->kret) < 0 ||
        attr_u32(site, s_site_ksuspend, &si->ksuspend) < 0 || attr_u32(site, s_site_kresume, &si->kresume) < 0)
        goto fail;
    if ((si->is_gen = attr_truth(site, s_site_is_gen)) < 0)
        goto fail;
    if ((si->plain_single = attr_truth(site, s_site_plain_single)) < 0)
        goto fail;
    if ((getter = PyObject_GetAttr(site, s_site_getter)) == NULL)
        goto fail;
    si->args = ARGS_NONE;
    if (h->capture_args && getter != Py_None) {
        si->args = ARGS_FAST;
        if ((names = PyObject_GetAttr(site, s_site_argnames)) == NULL || (secret = PyObject_GetAttr(site, s_site_secret)) == NULL)
            goto fail;
        if ((varnames = PyObject_GetAttr(code, s_co_varnames)) == NULL || (cellvars = PyObject_GetAttr(code, s_co_cellvars)) == NULL)
            goto fail;
        if (!PyTuple_Check(names) || !PyTuple_Check(secret) || !PyTuple_Check(varnames) || !PyTuple_Check(cellvars)) {
            si->args = ARGS_PY;
        } else {
            Py_ssize_t n = PyTuple_GET_SIZE(names);
            si->nargs = n;
            si->idx = PyMem_Calloc((size_t)n + 1, sizeof(Py_ssize_t));
            si->secret = PyMem_Calloc((size_t)n + 1, 1);
            if (si->idx == NULL || si->secret == NULL) {
                PyErr_NoMemory();
                goto fail;
            }
            for (Py_ssize_t i = 0; i < n && si->args == ARGS_FAST; i++) {
                PyObject *name = PyTuple_GET_ITEM(names, i);
                int cell = PySequence_Contains(cellvars, name);
                if (cell < 0)
                    goto fail;
                Py_ssize_t j = -1;
                for (Py_ssize_t k = 0; k < PyTuple_GET_SIZE(varnames); k++) {
                    int eq = PyObject_RichCompareBool(PyTuple_GET_ITEM(varnames, k), name, Py_EQ);
                    if (eq < 0)
                        goto fail;
                    if (eq) {
                        j = k;
                        break;
                    }
                }
                if (cell || j < 0)
                    si->args = ARGS_PY; /* a cell (or something odd): let f_locals sort it out */
                si->idx[i] = j;
            }
            for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(secret); i++) {
                Py_ssize_t k = PyLong_AsSsize_t(PyTuple_GET_ITEM(secret, i));
                if (k == -1 && PyErr_Occurred())
                    goto fail;
                if (k >= 0 && k < n)
                    si->secret[k] = 1;
            }
        }
    }
    Py_XDECREF(getter);
    Py_XDECREF(names);
    Py_XDECREF(secret);
    Py_XDECREF(varnames);
    Py_XDECREF(cellvars);
    return si;
fail:
    Py_XDECREF(getter);
    Py_XDECREF(names);
    Py_XDECREF(secret);
    Py_XDECREF(varnames);
    Py_XDECREF(cellvars);
    siteinfo_free(si);
    return NULL;
}

/* The site of a code object, or NULL (no error set) when it has none: the table
 * first, then Recorder.site_by_code (whose entries are copied into the table). */
static SiteInfo *site_lookup(HooksObject *h, PyObject *code, int *error) {
    Slot *s = table_find(h, code);
    if (s->key != NULL) {
        if (s->info != NULL)
            return s->info;
        if (s->stamp == PyDict_GET_SIZE(h->sites))
            return NULL; /* still no site: nothing was added since */
    }
    PyObject *key = PyLong_FromVoidPtr(code);
    if (key == NULL)
        goto err;
    PyObject *site = PyDict_GetItemWithError(h->sites, key);
    Py_DECREF(key);
    if (site == NULL) {
        if (PyErr_Occurred())
            goto err;
        if (s->key == NULL && (h->used + 1) * 2 > h->size) {
            if (table_grow(h) < 0)
                goto err;
            s = table_find(h, code);
        }
        if (s->key == NULL)
            h->used++;
        s->key = code;
        s->info = NULL;
        s->stamp = PyDict_GET_SIZE(h->sites);
        return NULL;
    }
    SiteInfo *si = siteinfo_make(h, code, site);
    if (si == NULL)
        goto err;
    s = table_find(h, code); /* the table is ours alone, but look again after Python calls */
    if (s->key == NULL && (h->used + 1) * 2 > h->size) {
        if (table_grow(h) < 0) {
            siteinfo_free(si);
            goto err;
        }
        s = table_find(h, code);
    }
    if (s->key == NULL)
        h->used++;
    s->key = code;
    s->info = si;
    return si;
err:
    *error = 1;
    return NULL;
}

static inline PyObject *buf_slot(PyObject *b, Py_ssize_t off) {
    PyObject *v = SN_SLOT(b, off);
    if (v == NULL)
        PyErr_SetString(PyExc_AttributeError, "thread buffer slot is unset");
    return v;
}

/* 1: recording on; 0: off; -1: error */
static inline int flag(PyObject *b, Py_ssize_t off) {
    PyObject *v = buf_slot(b, off);
    if (v == Py_True)
        return 1;
    if (v == Py_False)
        return 0;
    if (v == NULL)
        return -1;
    return PyObject_IsTrue(v);
}

/* new reference: the value itself when atomic (and not long text), else cap(b, value) */
static inline PyObject *keep_value(HooksObject *h, PyObject *b, PyObject *v) {
    if (sn_kept_as_is(v))
        return Py_NewRef(v);
    PyObject *args[2] = {b, v};
    return PyObject_Vectorcall(h->cap, args, 2, NULL);
}

static inline int col_append_q(PyObject *col, int64_t v) {
    if (Py_IS_TYPE(col, &ColType))
        return col_push_q((ColObject *)col, v);
    PyObject *x = PyLong_FromLongLong(v), *r = NULL;
    if (x != NULL) {
        r = PyObject_CallMethod(col, "append", "O", x);
        Py_DECREF(x);
    }
    Py_XDECREF(r);
    return r == NULL ? -1 : 0;
}

static inline int col_append_I(PyObject *col, uint32_t v) {
    if (Py_IS_TYPE(col, &ColType))
        return col_push_I((ColObject *)col, v);
    PyObject *x = PyLong_FromUnsignedLong(v), *r = NULL;
    if (x != NULL) {
        r = PyObject_CallMethod(col, "append", "O", x);
        Py_DECREF(x);
    }
    Py_XDECREF(r);
    return r == NULL ? -1 : 0;
}

/* Append one event (steals v) and seal at chunk size. ts is read after vals and ks,
 * as in the Python callbacks. */
static int append_event(HooksObject *h, PyObject *b, PyObject *v, uint32_t k, int64_t t, int now) {
    PyObject *vals = buf_slot(b, h->bufs.off_vals);
    if (vals == NULL || (PyList_CheckExact(vals) ? PyList_Append(vals, v) : -1) < 0) {
        if (vals != NULL && !PyErr_Occurred())
            PyErr_SetString(PyExc_TypeError, "thread buffer vals is not a list");
        Py_DECREF(v);
        return -1;
    }
    Py_DECREF(v);
    PyObject *ks = buf_slot(b, h->bufs.off_ks);
    if (ks == NULL || col_append_I(ks, k) < 0)
        return -1;
    PyObject *ts = buf_slot(b, h->bufs.off_ts);
    if (ts == NULL || col_append_q(ts, now ? sn_perf_ns() : t) < 0)
        return -1;
    Py_ssize_t n = Py_IS_TYPE(ts, &ColType) ? ((ColObject *)ts)->len : PyObject_Length(ts);
    if (n < 0)
        return -1;
    if (n >= h->bufs.chunk) {
        PyObject *r = PyObject_CallMethodNoArgs(b, s_seal);
        if (r == NULL)
            return -1;
        Py_DECREF(r);
    }
    return 0;
}

/* A failure inside a hook: counted through fault_fn(where, exc), i.e. rec.fault; never raised into
 * the program (BaseException that is not an Exception propagates, as in Python). */
PyObject *sn_report_fault(PyObject *fault_fn, PyObject *where) {
    PyObject *exc = sn_err_take();
    if (exc == NULL)
        Py_RETURN_NONE;
    if (!PyObject_TypeCheck(exc, (PyTypeObject *)PyExc_Exception)) {
        sn_err_give(exc);
        return NULL;
    }
    PyObject *args[2] = {where, exc};
    PyObject *r = PyObject_Vectorcall(fault_fn, args, 2, NULL);
    if (r == NULL)
        PyErr_Clear();
    Py_XDECREF(r);
    Py_DECREF(exc);
    Py_RETURN_NONE;
}

static PyObject *fault(HooksObject *h, PyObject *where) { return sn_report_fault(h->fault, where); }


/* In an event loop's thread: is the running task (asyncio.current_task()) still the
 * one the buffer noted? Then Recorder.sync_task has nothing to do, and is not called. */
static int same_task(HooksObject *h, PyObject *b) {
    if (h->current_task == Py_None)
        return 0;
    PyObject *task = PyObject_CallNoArgs(h->current_task);
    if (task == NULL) { /* no running loop: sync_task decides */
        PyErr_Clear();
        return 0;
    }
    int same = task == SN_SLOT(b, h->bufs.off_task);
    Py_DECREF(task);
    return same;
}

/* A call or a resume about to be recorded in buffer `b`: 1 when b's thread records
 * calls (in an event loop's thread the running task is synced first), 0 when it does
 * not, -1 on error. */
static int entering(HooksObject *h, PyObject *b) {
    int on = flag(b, h->bufs.off_on);
    if (on <= 0)
        return on;
    int loopy = flag(b, h->bufs.off_loopy);
    if (loopy < 0)
        return -1;
    if (loopy && !same_task(h, b)) {
        PyObject *r = PyObject_CallOneArg(h->sync_task, b);
        if (r == NULL)
            return -1;
        Py_DECREF(r);
    }
    return 1;
}

/* The arguments of a call starting now in `frame` (the traced function's own frame,
 * or NULL when unknown), as backends.py records them. New reference. */
static PyObject *call_value(HooksObject *h, PyObject *b, SiteInfo *si, PyObject *code, sn_iframe *frame,
                            PyObject *frame_obj) {
    if (!h->capture_args || si->args == ARGS_NONE)
        Py_RETURN_NONE;
    if (si->args == ARGS_FAST && frame != NULL && SN_FRAME_CODE(frame) == code) {
        PyObject **loc = frame->localsplus;
        if (si->plain_single) {
            PyObject *x = loc[si->idx[0]];
            if (x != NULL)
                return keep_value(h, b, x);
        } else if (si->nargs == 1) {
            return Py_NewRef(h->redacted); /* a single secret argument */
        } else {
            Py_ssize_t n = si->nargs, i;
            for (i = 0; i < n; i++)
                if (loc[si->idx[i]] == NULL)
                    break;
            if (i == n) {
                PyObject *out = PyTuple_New(n);
                if (out == NULL)
                    return NULL;
                for (i = 0; i < n; i++) {
                    PyObject *x = si->secret[i] ? Py_NewRef(h->redacted) : keep_value(h, b, loc[si->idx[i]]);
                    if (x == NULL) {
                        Py_DECREF(out);
                        return NULL;
                    }
                    PyTuple_SET_ITEM(out, i, x);
                }
                return out;
            }
        }
    }
    if (frame_obj == NULL) {
        frame_obj = (PyObject *)PyEval_GetFrame();
        if (frame_obj == NULL)
            Py_RETURN_NONE;
    }
    PyObject *args[3] = {b, si->site, frame_obj};
    return PyObject_Vectorcall(h->args_of, args, 3, NULL);
}

#if PY_VERSION_HEX >= 0x030C0000
/* sys.monitoring PY_START(code, offset) */
static PyObject *hooks_on_start(HooksObject *h, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs < 1) {
        PyErr_SetString(PyExc_TypeError, "on_start(code, offset)");
        return NULL;
    }
    PyObject *code = args[0];
    int error = 0;
    SiteInfo *si = site_lookup(h, code, &error);
    if (si == NULL) {
        if (error)
            PyErr_Clear();
        return PyObject_Vectorcall(h->py_start, args, nargs, NULL);
    }
    PyObject *b = sn_buffer(&h->bufs);
    if (b == NULL)
        return fault(h, s_call);
    Py_INCREF(b);
    if (entering(h, b) <= 0)
        goto out;
    PyObject *v = call_value(h, b, si, code, sn_current_frame(), NULL);
    if (v == NULL)
        goto out;
    if (si->is_gen) {
        PyObject *f = (PyObject *)PyEval_GetFrame();
        PyObject *fid = f ? PyLong_FromVoidPtr(f) : Py_NewRef(Py_None);
        PyObject *pair = fid ? PyTuple_Pack(2, fid, v) : NULL;
        Py_XDECREF(fid);
        Py_DECREF(v);
        if (pair == NULL)
            goto out;
        v = pair;
    }
    append_event(h, b, v, si->kcall, 0, 1);
out:
    Py_DECREF(b);
    if (PyErr_Occurred())
        return fault(h, s_call);
    Py_RETURN_NONE;
}

/* The id of the running frame (its frame object's, as the Python callbacks' id(frame)). */
static PyObject *frame_id(void) {
    PyObject *f = (PyObject *)PyEval_GetFrame();
    return f == NULL ? Py_NewRef(Py_None) : PyLong_FromVoidPtr(f);
}

/* sys.monitoring PY_RETURN(code, offset, retval) and PY_YIELD(code, offset, value): a
 * frame returns its value, or a generator or coroutine suspends (its frame id). */
static inline PyObject *on_leave(HooksObject *h, PyObject *const *args, Py_ssize_t nargs, int yielded) {
    int64_t t = sn_perf_ns();
    if (nargs < 3) {
        PyErr_Format(PyExc_TypeError, "%s(code, offset, value)", yielded ? "on_yield" : "on_return");
        return NULL;
    }
    PyObject *where = yielded ? s_yield : s_return;
    int error = 0;
    SiteInfo *si = site_lookup(h, args[0], &error);
    if (si == NULL) {
        if (error)
            PyErr_Clear();
        return PyObject_Vectorcall(yielded ? h->py_yield : h->py_return, args, nargs, NULL);
    }
    PyObject *b = sn_buffer(&h->bufs);
    if (b == NULL)
        return fault(h, where);
    Py_INCREF(b);
    int on = flag(b, h->bufs.off_on);
    if (on <= 0)
        goto out;
    PyObject *v = yielded ? frame_id() : keep_value(h, b, args[2]);
    if (v == NULL)
        goto out;
    append_event(h, b, v, yielded ? si->ksuspend : si->kret, t, 0);
out:
    Py_DECREF(b);
    if (PyErr_Occurred())
        return fault(h, where);
    Py_RETURN_NONE;
}

static PyObject *hooks_on_return(HooksObject *h, PyObject *const *args, Py_ssize_t nargs) {
    return on_leave(h, args, nargs, 0);
}

static PyObject *hooks_on_yield(HooksObject *h, PyObject *const *args, Py_ssize_t nargs) {
    return on_leave(h, args, nargs, 1);
}

/* sys.monitoring PY_RESUME(code, offset): it resumes (the task running it, in an
 * event loop's thread, becomes the running actor first) */
static PyObject *hooks_on_resume(HooksObject *h, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs < 2) {
        PyErr_SetString(PyExc_TypeError, "on_resume(code, offset)");
        return NULL;
    }
    int error = 0;
    SiteInfo *si = site_lookup(h, args[0], &error);
    if (si == NULL) {
        if (error)
            PyErr_Clear();
        return PyObject_Vectorcall(h->py_resume, args, nargs, NULL);
    }
    PyObject *b = sn_buffer(&h->bufs);
    if (b == NULL)
        return fault(h, s_resume);
    Py_INCREF(b);
    if (entering(h, b) <= 0)
        goto out;
    PyObject *v = frame_id();
    if (v != NULL)
        append_event(h, b, v, si->kresume, 0, 1);
out:
    Py_DECREF(b);
    if (PyErr_Occurred())
        return fault(h, s_resume);
    Py_RETURN_NONE;
}
#endif

#if PY_VERSION_HEX < 0x030C0000
/* ---- 3.11: a C profile function (PyEval_SetProfile) ----------------------- */

/* fault() for a profile function: 0, or -1 when an exception must propagate */
static int fault_rc(HooksObject *h, PyObject *where) {
    PyObject *r = fault(h, where);
    if (r == NULL)
        return -1;
    Py_DECREF(r);
    return 0;
}

/* backends.ProfileBackend forgets a frame's pending exception when it ends */
static int forget_exception(HooksObject *h, PyFrameObject *frame) {
    if (!PyDict_Check(h->exc_pending) || PyDict_GET_SIZE(h->exc_pending) == 0)
        return 0;
    PyObject *key = PyLong_FromVoidPtr(frame);
    if (key == NULL)
        return -1;
    int rc = PyDict_DelItem(h->exc_pending, key);
    Py_DECREF(key);
    if (rc < 0 && PyErr_ExceptionMatches(PyExc_KeyError)) {
        PyErr_Clear();
        rc = 0;
    }
    return rc;
}

static PyObject *py_hook_call(HooksObject *h, PyFrameObject *frame, PyObject *event, PyObject *arg) {
    PyObject *args[3] = {(PyObject *)frame, event, arg ? arg : Py_None};
    return PyObject_Vectorcall(h->py_hook, args, 3, NULL);
}

static int profile_call(HooksObject *h, PyFrameObject *frame) {
    sn_frameobject *fo = (sn_frameobject *)frame;
    PyObject *code = SN_FRAME_CODE(fo->f_frame);
    int error = 0;
    SiteInfo *si = site_lookup(h, code, &error);
    if (error)
        PyErr_Clear();
    if (si == NULL || (si->is_gen && h->resume_op < 0)) {
        int fresh = si == NULL && !error;
        if (fresh) {
            Slot *s = table_find(h, code);
            if (s->key == code && s->never != NULL)
                return 0; /* not user code: no Python call (3.11 has no DISABLE) */
            int te = attr_truth(h->rec, s_trace_everything);
            if (te <= 0) {
                if (te < 0)
                    PyErr_Clear();
                return 0;
            }
        }
        PyObject *r = py_hook_call(h, frame, s_call, NULL);
        if (r == NULL)
            return -1;
        Py_DECREF(r);
        if (fresh && site_lookup(h, code, &error) == NULL && !error) {
            Slot *s = table_find(h, code); /* the hook gave it no site: it never will */
            if (s->key == code && s->never == NULL)
                s->never = Py_NewRef(code);
        }
        if (error)
            PyErr_Clear();
        return 0;
    }
    PyObject *b = sn_buffer(&h->bufs);
    if (b == NULL)
        return fault_rc(h, s_call);
    Py_INCREF(b);
    if (entering(h, b) <= 0)
        goto out;
    if (h->exc_tracer != Py_None) {
        fo->f_trace_lines = 0;
        Py_XSETREF(fo->f_trace, Py_NewRef(h->exc_tracer));
    }
    if (si->is_gen) {
        /* a generator or coroutine: a first start is its call, a later one a resume */
        int lasti = PyFrame_GetLasti(frame), first = 1;
        if (lasti >= 0) {
            PyObject *co = PyCode_GetCode((PyCodeObject *)code);
            if (co == NULL)
                goto out;
            const unsigned char *ops = (const unsigned char *)PyBytes_AS_STRING(co);
            first = lasti + 1 < PyBytes_GET_SIZE(co) && ops[lasti] == h->resume_op && ops[lasti + 1] == 0;
            Py_DECREF(co);
        }
        PyObject *fid = PyLong_FromVoidPtr(frame);
        if (fid == NULL)
            goto out;
        if (!first) {
            append_event(h, b, fid, si->kresume, 0, 1);
            goto out;
        }
        PyObject *v = call_value(h, b, si, code, fo->f_frame, (PyObject *)frame);
        PyObject *pair = v == NULL ? NULL : PyTuple_Pack(2, fid, v);
        Py_DECREF(fid);
        Py_XDECREF(v);
        if (pair != NULL)
            append_event(h, b, pair, si->kcall, 0, 1);
        goto out;
    }
    PyObject *v = call_value(h, b, si, code, fo->f_frame, (PyObject *)frame);
    if (v == NULL)
        goto out;
    append_event(h, b, v, si->kcall, 0, 1);
out:
    Py_DECREF(b);
    if (PyErr_Occurred())
        return fault_rc(h, s_call);
    return 0;
}

static int profile_return(HooksObject *h, PyFrameObject *frame, PyObject *arg) {
    int64_t t = sn_perf_ns();
    sn_frameobject *fo = (sn_frameobject *)frame;
    PyObject *code = SN_FRAME_CODE(fo->f_frame);
    int error = 0;
    SiteInfo *si = site_lookup(h, code, &error);
    if (error)
        PyErr_Clear();
    if (si == NULL && !error)
        return 0;
    int ret = 0, yielded = 0;
    if (si != NULL && (!si->is_gen || h->yield_op >= 0)) {
        /* a return (not an exception): the last instruction is a return opcode; a
         * generator's yield: YIELD_VALUE */
        int lasti = PyFrame_GetLasti(frame);
        PyObject *co = lasti >= 0 ? PyCode_GetCode((PyCodeObject *)code) : NULL;
        if (co != NULL) {
            if (lasti < PyBytes_GET_SIZE(co)) {
                int op = (unsigned char)PyBytes_AS_STRING(co)[lasti];
                yielded = si->is_gen && op == h->yield_op;
                PyObject *opo = yielded ? NULL : PyLong_FromLong(op);
                ret = yielded ? 0 : opo ? PySequence_Contains(h->return_ops, opo) : -1;
                Py_XDECREF(opo);
            }
            Py_DECREF(co);
        }
        if (ret < 0) {
            PyErr_Clear();
            ret = 0;
        }
    }
    if (!ret && !yielded) {
        PyObject *r = py_hook_call(h, frame, s_return, arg);
        if (r == NULL)
            return -1;
        Py_DECREF(r);
        return 0;
    }
    PyObject *b = sn_buffer(&h->bufs);
    if (b == NULL)
        return fault_rc(h, s_return);
    Py_INCREF(b);
    int on = flag(b, h->bufs.off_on);
    if (on <= 0)
        goto out;
    PyObject *v = yielded ? PyLong_FromVoidPtr(frame) : keep_value(h, b, arg ? arg : Py_None);
    if (v == NULL)
        goto out;
    if (forget_exception(h, frame) < 0) {
        Py_DECREF(v);
        goto out;
    }
    append_event(h, b, v, yielded ? si->ksuspend : si->kret, t, 0);
out:
    Py_DECREF(b);
    if (PyErr_Occurred())
        return fault_rc(h, s_return);
    return 0;
}

static int profile_func(PyObject *obj, PyFrameObject *frame, int what, PyObject *arg) {
    HooksObject *h = (HooksObject *)obj;
    if (what == PyTrace_CALL)
        return profile_call(h, frame);
    if (what == PyTrace_RETURN)
        return profile_return(h, frame, arg);
    return 0;
}

/* Is this f_trace the mark profile_call (or ProfileBackend.hook) left on a recorded
 * frame? The Python hook stores a fresh bound method each time: compare its parts. */
static int is_exc_mark(HooksObject *h, PyObject *f) {
    if (f == NULL || f == Py_None)
        return 0;
    if (f == h->exc_tracer)
        return 1;
    return PyMethod_Check(f) && PyMethod_Check(h->exc_tracer) &&
           PyMethod_GET_FUNCTION(f) == PyMethod_GET_FUNCTION(h->exc_tracer) &&
           PyMethod_GET_SELF(f) == PyMethod_GET_SELF(h->exc_tracer);
}

/* The global trace function (3.11): what ProfileBackend._exc_tracer does for marked
 * frames -- note the exception raised through them -- without the Python trampoline,
 * which would copy every frame's locals to a dict on every call. */
static int trace_func(PyObject *obj, PyFrameObject *frame, int what, PyObject *arg) {
    HooksObject *h = (HooksObject *)obj;
    if (what != PyTrace_EXCEPTION || !is_exc_mark(h, ((sn_frameobject *)frame)->f_trace))
        return 0;
    if (!PyDict_Check(h->exc_pending) || arg == NULL || !PyTuple_Check(arg) || PyTuple_GET_SIZE(arg) < 2)
        return 0;
    PyObject *key = PyLong_FromVoidPtr(frame);
    int rc = key ? PyDict_SetItem(h->exc_pending, key, PyTuple_GET_ITEM(arg, 1)) : -1;
    Py_XDECREF(key);
    if (rc < 0) {
        PyObject *where = PyUnicode_FromString("exception");
        if (where == NULL)
            return -1;
        rc = fault_rc(h, where);
        Py_DECREF(where);
    }
    return rc;
}

/* Called through sys.settrace's / sys.setprofile's trampoline, in a new thread
 * (threading.settrace / threading.setprofile): switch this thread to the C functions.
 * The trace trampoline runs first for a call; the profile event of the same call then
 * reaches the C profile function. Called by the profile trampoline, handle the event. */
static PyObject *hooks_call(HooksObject *h, PyObject *args, PyObject *kwds) {
    PyObject *frame, *event, *arg;
    if (!PyArg_ParseTuple(args, "OOO", &frame, &event, &arg))
        return NULL;
    if (!PyFrame_Check(frame)) {
        PyErr_SetString(PyExc_TypeError, "a profile function takes (frame, event, arg)");
        return NULL;
    }
    PyThreadState *ts = PyThreadState_GET();
    if (ts->c_traceobj == (PyObject *)h && ts->c_tracefunc != trace_func) {
        PyEval_SetTrace(trace_func, (PyObject *)h);
        if (ts->c_profileobj == (PyObject *)h)
            PyEval_SetProfile(profile_func, (PyObject *)h);
        Py_RETURN_NONE;
    }
    int rc = 0;
    if (PyUnicode_Check(event)) {
        if (PyUnicode_Compare(event, s_call) == 0)
            rc = profile_call(h, (PyFrameObject *)frame);
        else if (PyUnicode_Compare(event, s_return) == 0)
            rc = profile_return(h, (PyFrameObject *)frame, arg);
    }
    if (rc < 0)
        return NULL;
    PyEval_SetProfile(profile_func, (PyObject *)h);
    Py_RETURN_NONE;
}

static PyObject *hooks_install_profile(HooksObject *h, PyObject *unused) {
    PyEval_SetProfile(profile_func, (PyObject *)h);
    Py_RETURN_NONE;
}

static PyObject *hooks_install_trace(HooksObject *h, PyObject *unused) {
    PyEval_SetTrace(trace_func, (PyObject *)h);
    Py_RETURN_NONE;
}

/* The threads already running when recording starts: the C profile function (and,
 * with `trace`, the C trace function) in every other thread that has none, as 3.12's
 * PyEval_SetProfileAllThreads does (a thread's own profiler is left alone). With the
 * GIL held no thread state is created or deleted meanwhile. Returns how many. */
static PyObject *hooks_install_others(HooksObject *h, PyObject *trace) {
    PyThreadState *me = PyThreadState_GET();
    int with_trace = PyObject_IsTrue(trace);
    if (with_trace < 0)
        return NULL;
    Py_ssize_t n = 0;
    for (PyThreadState *ts = PyInterpreterState_ThreadHead(me->interp); ts != NULL; ts = PyThreadState_Next(ts)) {
        if (ts == me || ts->c_profilefunc != NULL)
            continue;
        if (_PyEval_SetProfile(ts, profile_func, (PyObject *)h) < 0)
            return NULL;
        if (with_trace && ts->c_tracefunc == NULL && _PyEval_SetTrace(ts, trace_func, (PyObject *)h) < 0)
            return NULL;
        n++;
    }
    return PyLong_FromSsize_t(n);
}

/* At stop: every other thread whose profile or trace function is still this
 * recording's (installed above, or at its start by threading.setprofile) gets none. */
static PyObject *hooks_uninstall_others(HooksObject *h, PyObject *unused) {
    PyThreadState *me = PyThreadState_GET();
    for (PyThreadState *ts = PyInterpreterState_ThreadHead(me->interp); ts != NULL; ts = PyThreadState_Next(ts)) {
        if (ts == me)
            continue;
        if (ts->c_profileobj == (PyObject *)h && _PyEval_SetProfile(ts, NULL, NULL) < 0)
            return NULL;
        if (ts->c_traceobj == (PyObject *)h && _PyEval_SetTrace(ts, NULL, NULL) < 0)
            return NULL;
    }
    Py_RETURN_NONE;
}
#endif

/* ---- construction ---------------------------------------------------------- */

int sn_member_offset(PyObject *type, const char *name, Py_ssize_t *off) {
    PyObject *d = PyObject_GetAttrString(type, name);
    if (d == NULL)
        return -1;
    int ok = Py_IS_TYPE(d, &PyMemberDescr_Type) && ((PyMemberDescrObject *)d)->d_member->type == T_OBJECT_EX;
    if (ok)
        *off = ((PyMemberDescrObject *)d)->d_member->offset;
    Py_DECREF(d);
    if (!ok) {
        PyErr_Format(PyExc_TypeError, "buffer type: %s is not a slot", name);
        return -1;
    }
    return 0;
}

PyCFunction sn_c_method(PyTypeObject *type, PyObject *name, int flags) {
    PyObject *d = _PyType_Lookup(type, name); /* borrowed: the type owns it */
    if (d == NULL || !Py_IS_TYPE(d, &PyMethodDescr_Type))
        return NULL;
    PyMethodDef *def = ((PyMethodDescrObject *)d)->d_method;
    return def->ml_flags == flags && PyType_IsSubtype(type, PyDescr_TYPE(d)) ? def->ml_meth : NULL;
}

static PyObject *hooks_new(PyTypeObject *type, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"rec", "local", "new_buffer", "sync_task", "fault", "cap", "args_of", "sites",
                             "chunk", "capture_args", "buffer_type", "redacted", "py_start", "py_return",
                             "disable", "py_hook", "exc_tracer", "return_ops", "exc_pending", "py_yield",
                             "py_resume", "gen_ops", "current_task", NULL};
    PyObject *rec, *local, *new_buffer, *sync_task, *faultf, *cap, *args_of, *sites, *buffer_type, *redacted;
    PyObject *py_start = Py_None, *py_return = Py_None, *disable = Py_None, *py_hook = Py_None,
             *exc_tracer = Py_None, *return_ops = NULL, *exc_pending = Py_None, *py_yield = Py_None,
             *py_resume = Py_None;
    int yield_op = -1, resume_op = -1;
    PyObject *current_task = Py_None;
    Py_ssize_t chunk;
    int capture_args;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOOOOOOO!npOO|OOOOOOOOO(ii)O:Hooks", kwlist, &rec, &local, &new_buffer,
                                     &sync_task, &faultf, &cap, &args_of, &PyDict_Type, &sites, &chunk,
                                     &capture_args, &buffer_type, &redacted, &py_start, &py_return, &disable,
                                     &py_hook, &exc_tracer, &return_ops, &exc_pending, &py_yield, &py_resume, &yield_op,
                                     &resume_op, &current_task))
        return NULL;
    HooksObject *h = (HooksObject *)type->tp_alloc(type, 0);
    if (h == NULL)
        return NULL;
    if (sn_buffers_init(&h->bufs, local, new_buffer, buffer_type, Py_None, chunk) < 0) {
        Py_DECREF(h);
        return NULL;
    }
    h->rec = Py_NewRef(rec);
    h->sync_task = Py_NewRef(sync_task);
    h->current_task = Py_NewRef(current_task);
    h->fault = Py_NewRef(faultf);
    h->cap = Py_NewRef(cap);
    h->args_of = Py_NewRef(args_of);
    h->sites = Py_NewRef(sites);
    h->redacted = Py_NewRef(redacted);
    h->py_start = Py_NewRef(py_start);
    h->py_return = Py_NewRef(py_return);
    h->py_yield = Py_NewRef(py_yield);
    h->py_resume = Py_NewRef(py_resume);
    h->disable = Py_NewRef(disable);
    h->py_hook = Py_NewRef(py_hook);
    h->exc_tracer = Py_NewRef(exc_tracer);
    h->return_ops = return_ops ? Py_NewRef(return_ops) : PyTuple_New(0);
    h->exc_pending = Py_NewRef(exc_pending);
    h->capture_args = capture_args;
    h->yield_op = yield_op;
    h->resume_op = resume_op;
    if (h->return_ops == NULL || table_grow(h) < 0) {
        Py_DECREF(h);
        return NULL;
    }
    return (PyObject *)h;
}

static int hooks_traverse(HooksObject *h, visitproc visit, void *arg) {
    if (sn_buffers_traverse(&h->bufs, visit, arg) < 0)
        return -1;
    Py_VISIT(h->rec);
    Py_VISIT(h->sync_task);
    Py_VISIT(h->current_task);
    Py_VISIT(h->fault);
    Py_VISIT(h->cap);
    Py_VISIT(h->args_of);
    Py_VISIT(h->sites);
    Py_VISIT(h->redacted);
    Py_VISIT(h->py_start);
    Py_VISIT(h->py_return);
    Py_VISIT(h->py_yield);
    Py_VISIT(h->py_resume);
    Py_VISIT(h->disable);
    Py_VISIT(h->py_hook);
    Py_VISIT(h->exc_tracer);
    Py_VISIT(h->return_ops);
    Py_VISIT(h->exc_pending);
    for (Py_ssize_t i = 0; i < h->size; i++)
        if (h->table[i].info != NULL)
            Py_VISIT(h->table[i].info->site);
    return 0;
}

static int hooks_clear(HooksObject *h) {
    sn_buffers_clear(&h->bufs);
    Py_CLEAR(h->rec);
    Py_CLEAR(h->sync_task);
    Py_CLEAR(h->current_task);
    Py_CLEAR(h->fault);
    Py_CLEAR(h->cap);
    Py_CLEAR(h->args_of);
    Py_CLEAR(h->sites);
    Py_CLEAR(h->redacted);
    Py_CLEAR(h->py_start);
    Py_CLEAR(h->py_return);
    Py_CLEAR(h->py_yield);
    Py_CLEAR(h->py_resume);
    Py_CLEAR(h->disable);
    Py_CLEAR(h->py_hook);
    Py_CLEAR(h->exc_tracer);
    Py_CLEAR(h->return_ops);
    Py_CLEAR(h->exc_pending);
    Slot *t = h->table;
    Py_ssize_t n = h->size;
    h->table = NULL;
    h->size = h->used = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        siteinfo_free(t[i].info);
        Py_XDECREF(t[i].never);
    }
    PyMem_Free(t);
    return 0;
}

static void hooks_dealloc(HooksObject *h) {
    PyObject_GC_UnTrack(h);
    hooks_clear(h);
    Py_TYPE(h)->tp_free((PyObject *)h);
}

static PyMethodDef hooks_methods[] = {
#if PY_VERSION_HEX >= 0x030C0000
    {"on_start", (PyCFunction)(void (*)(void))hooks_on_start, METH_FASTCALL, "sys.monitoring PY_START callback."},
    {"on_return", (PyCFunction)(void (*)(void))hooks_on_return, METH_FASTCALL, "sys.monitoring PY_RETURN callback."},
    {"on_yield", (PyCFunction)(void (*)(void))hooks_on_yield, METH_FASTCALL, "sys.monitoring PY_YIELD callback."},
    {"on_resume", (PyCFunction)(void (*)(void))hooks_on_resume, METH_FASTCALL, "sys.monitoring PY_RESUME callback."},
#else
    {"install_profile", (PyCFunction)hooks_install_profile, METH_NOARGS,
     "Install the C profile function in the calling thread (sys.getprofile() then returns this object)."},
    {"install_trace", (PyCFunction)hooks_install_trace, METH_NOARGS,
     "Install the C trace function (exceptions of recorded frames) in the calling thread."},
    {"install_others", (PyCFunction)hooks_install_others, METH_O,
     "install_others(trace) -> n: the C profile (and trace) function in the other running threads that have none."},
    {"uninstall_others", (PyCFunction)hooks_uninstall_others, METH_NOARGS,
     "Remove this object as profile / trace function from every other thread."},
#endif
    {NULL},
};

static PyTypeObject HooksType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "scope_nb.recorder._fasthooks.Hooks",
    .tp_doc = "The hot call callbacks of one recording.",
    .tp_basicsize = sizeof(HooksObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_new = hooks_new,
    .tp_dealloc = (destructor)hooks_dealloc,
    .tp_traverse = (traverseproc)hooks_traverse,
    .tp_clear = (inquiry)hooks_clear,
    .tp_methods = hooks_methods,
#if PY_VERSION_HEX < 0x030C0000
    .tp_call = (ternaryfunc)hooks_call,
#endif
};

/* ------------------------------------------------------------------------ */
/* Decoder: the per-event loop of scope_nb.decode.decode() for one chunk.     */
/*
 * decode.py's Python loop is the reference; this turns the common events into the
 * same strings (repr of ints within +-10**15, floats, bools and None; the text of a
 * Formatted; "name=value" joined with ", ") and calls the Python functions of
 * decode.py (show, args_text, rich_values, rich_detail) for everything else.
 */

#define SN_BIG 1000000000000000LL /* decode._BIG: ints inside (-BIG, BIG) have short reprs */
#define SN_SMALL_LO (-5)
#define SN_SMALL_HI 1024

static PyObject *small_int_text[SN_SMALL_HI - SN_SMALL_LO];
static PyObject *s_true_text, *s_false_text, *s_none_text, *s_empty, *s_sep, *s_eq, *s_text;

/* An emitted event already decoded: a lock reuses its event tuples, so most emitted
 * rows of a lock-heavy trace repeat one of a few (the cache holds them alive). */
#define SN_RICH_CACHE 256
#define SN_RICH_FIELDS 9 /* decode.RICH_FIELDS */
typedef struct {
    PyObject *ev, *actor, *fields, *detail;
} RichSeen;

typedef struct {
    PyObject_HEAD
    PyObject *names, *gens, *shown, *locations, *fmt, *formatted, *show, *args_text, *rich_values, *rich_detail;
    PyObject *detail, *fid, *actor, *rich_rows, *rich_cols;
    PyObject **prefix; /* per site: a tuple of "name=" strings, made on first use */
    Py_ssize_t nsites, text_off, max_items, max_len;
    uint32_t c_call, c_return, c_exception, c_suspend, c_resume, c_switch, kind_bits, kind_mask;
    RichSeen seen[SN_RICH_CACHE];
} DecoderObject;

/* The decimal text of x (|x| < 10**15), as repr() writes it. New reference. */
static PyObject *int_text(long long x) {
    if (x >= SN_SMALL_LO && x < SN_SMALL_HI) {
        PyObject **slot = &small_int_text[x - SN_SMALL_LO];
        if (*slot == NULL) {
            char b[8];
            int n = snprintf(b, sizeof b, "%lld", x);
            if ((*slot = PyUnicode_FromStringAndSize(b, n)) == NULL)
                return NULL;
        }
        return Py_NewRef(*slot);
    }
    char b[24], *p = b + sizeof b;
    unsigned long long u = x < 0 ? 0ULL - (unsigned long long)x : (unsigned long long)x;
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (x < 0)
        *--p = '-';
    Py_ssize_t n = b + sizeof b - p;
    PyObject *s = PyUnicode_New(n, 127);
    if (s != NULL)
        memcpy(PyUnicode_1BYTE_DATA(s), p, (size_t)n);
    return s;
}

/* The repr of a value that needs no bounding (an int within +-10**15, a float, a bool,
 * None) in *out (a new reference, NULL on error): 1. Any other value: 0. */
static int plain_text(PyObject *v, PyObject **out) {
    PyTypeObject *t = Py_TYPE(v);
    if (t == &PyLong_Type) {
        int overflow;
        long long x = PyLong_AsLongLongAndOverflow(v, &overflow);
        if (overflow || x <= -SN_BIG || x >= SN_BIG)
            return 0;
        *out = int_text(x);
        return 1;
    }
    if (t == &PyFloat_Type) {
        *out = PyObject_Repr(v);
        return 1;
    }
    if (v == Py_True || v == Py_False) {
        *out = Py_NewRef(v == Py_True ? s_true_text : s_false_text);
        return 1;
    }
    if (v == Py_None) {
        *out = Py_NewRef(s_none_text);
        return 1;
    }
    return 0;
}

/* v.text of a Formatted (borrowed through a new reference). */
static PyObject *formatted_text(DecoderObject *d, PyObject *v) {
    PyObject *x = *(PyObject **)((char *)v + d->text_off);
    return x != NULL ? Py_NewRef(x) : PyObject_GetAttr(v, s_text);
}

/* f"{x}" of a new reference x (stolen). */
static PyObject *fstr(PyObject *x) {
    if (x == NULL || PyUnicode_CheckExact(x))
        return x;
    PyObject *r = PyObject_Format(x, s_empty);
    Py_DECREF(x);
    return r;
}

static PyObject *call2(PyObject *f, PyObject *a, PyObject *b) {
    PyObject *args[2] = {a, b};
    return PyObject_Vectorcall(f, args, 2, NULL);
}

static PyObject *call3(PyObject *f, PyObject *a, PyObject *b, PyObject *c) {
    PyObject *args[3] = {a, b, c};
    return PyObject_Vectorcall(f, args, 3, NULL);
}

/* The "name=" strings of site s (borrowed), whose names are nm. */
static PyObject *site_prefix(DecoderObject *d, Py_ssize_t s, PyObject *nm) {
    if (d->prefix[s] != NULL)
        return d->prefix[s];
    Py_ssize_t n = PyTuple_GET_SIZE(nm);
    PyObject *p = PyTuple_New(n);
    if (p == NULL)
        return NULL;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *name = fstr(Py_NewRef(PyTuple_GET_ITEM(nm, i)));
        PyObject *x = name == NULL ? NULL : PyUnicode_Concat(name, s_eq);
        Py_XDECREF(name);
        if (x == NULL) {
            Py_DECREF(p);
            return NULL;
        }
        PyTuple_SET_ITEM(p, i, x);
    }
    d->prefix[s] = p;
    return p;
}

/* "name=" + text, text stolen */
static PyObject *named(PyObject *prefix, PyObject *text) {
    if (text == NULL)
        return NULL;
    PyObject *r = PyUnicode_Concat(prefix, text);
    Py_DECREF(text);
    return r;
}

/* show(fmt, v) as the text f"{...}" makes of it, for an argument value */
static PyObject *arg_text(DecoderObject *d, PyObject *v) {
    PyObject *r;
    if (plain_text(v, &r))
        return r;
    if (Py_IS_TYPE(v, (PyTypeObject *)d->formatted))
        return fstr(formatted_text(d, v));
    return fstr(call2(d->show, d->fmt, v));
}

/* args_text(fmt, names, v) of a call with several arguments */
static PyObject *args_detail(DecoderObject *d, Py_ssize_t s, PyObject *nm, PyObject *v) {
    if (v == Py_None)
        return Py_NewRef(Py_None);
    if (!PyTuple_CheckExact(v))
        return call3(d->args_text, d->fmt, nm, v);
    Py_ssize_t m = PyTuple_GET_SIZE(nm) < PyTuple_GET_SIZE(v) ? PyTuple_GET_SIZE(nm) : PyTuple_GET_SIZE(v);
    if (m == 0)
        return Py_NewRef(s_empty);
    PyObject *prefix = site_prefix(d, s, nm);
    if (prefix == NULL)
        return NULL;
    PyObject *parts = PyTuple_New(3 * m - 1);
    if (parts == NULL)
        return NULL;
    for (Py_ssize_t i = 0; i < m; i++) {
        PyObject *x = arg_text(d, PyTuple_GET_ITEM(v, i));
        if (x == NULL) {
            Py_DECREF(parts);
            return NULL;
        }
        if (i > 0)
            PyTuple_SET_ITEM(parts, 3 * i - 1, Py_NewRef(s_sep));
        PyTuple_SET_ITEM(parts, 3 * i, Py_NewRef(PyTuple_GET_ITEM(prefix, i)));
        PyTuple_SET_ITEM(parts, 3 * i + 1, x);
    }
    PyObject *r = PyUnicode_Join(s_empty, parts);
    Py_DECREF(parts);
    return r;
}

/* Values whose text is cached per site. Not floats: 0.0 == -0.0 would share a key. */
static inline int hashable_atomic(PyObject *v) {
    PyTypeObject *t = Py_TYPE(v);
    return t == &PyLong_Type || t == &PyBool_Type || v == Py_None || t == &PyUnicode_Type || t == &PyBytes_Type;
}

/* dict[row] = value */
static int put(PyObject *dict, Py_ssize_t row, PyObject *value) {
    PyObject *key = PyLong_FromSsize_t(row);
    if (key == NULL)
        return -1;
    int rc = PyDict_SetItem(dict, key, value);
    Py_DECREF(key);
    return rc;
}

/* rich_detail(fmt, x): the text of an emitted event's detail (new reference). None,
 * text, a Formatted, and a number or small tuple whose plain repr fits, here; the
 * rest by the Python function. */
static PyObject *message_text(DecoderObject *d, PyObject *x) {
    PyTypeObject *t = Py_TYPE(x);
    if (x == Py_None || t == &PyUnicode_Type)
        return Py_NewRef(x);
    if (t == (PyTypeObject *)d->formatted)
        return formatted_text(d, x);
    int plain = t == &PyLong_Type || t == &PyFloat_Type || t == &PyBool_Type;
    if (t == &PyTuple_Type && PyTuple_GET_SIZE(x) <= d->max_items) {
        plain = 1;
        for (Py_ssize_t i = 0; plain && i < PyTuple_GET_SIZE(x); i++) {
            PyObject *y = PyTuple_GET_ITEM(x, i);
            if (Py_IS_TYPE(y, &PyUnicode_Type))
                plain = PyUnicode_GET_LENGTH(y) <= d->max_len;
            else if (Py_IS_TYPE(y, &PyBytes_Type))
                plain = PyBytes_GET_SIZE(y) <= d->max_len;
        }
    }
    if (plain) {
        PyObject *r = PyObject_Repr(x);
        if (r == NULL || PyUnicode_GET_LENGTH(r) <= d->max_len)
            return r;
        Py_DECREF(r);
    }
    return call2(d->rich_detail, d->fmt, x);
}

static PyObject *int_or_none64(int64_t v) { return v == INT64_MIN ? Py_NewRef(Py_None) : PyLong_FromLongLong(v); }

/* Append an emitted event's fields (a sequence of SN_RICH_FIELDS) to rich_cols. */
static int add_fields(DecoderObject *d, PyObject *const *fields) {
    for (int i = 0; i < SN_RICH_FIELDS; i++)
        if (PyList_Append(PyList_GET_ITEM(d->rich_cols, i), fields[i]) < 0)
            return -1;
    return 0;
}

/* Decoded.add_rich(row, v) and rich_detail(fmt, v[2]): the detail (new reference). A
 * MessageEvent is read in C; an event tuple through decode.rich_values, once per
 * tuple while the cache holds it. */
static PyObject *rich_row(DecoderObject *d, Py_ssize_t row, PyObject *v) {
    PyObject *key = PyLong_FromSsize_t(row), *actor = NULL, *detail = NULL;
    int rc = -1;
    if (key == NULL || PyList_Append(d->rich_rows, key) < 0)
        goto done;
    SnMessage m;
    if (sn_message_view(v, &m)) {
        PyObject *id = int_or_none64(m.msg_id), *waited = int_or_none64(m.waited), *depth = int_or_none64(m.depth);
        if (id != NULL && waited != NULL && depth != NULL) {
            PyObject *fields[SN_RICH_FIELDS] = {m.queue, id, Py_None, Py_None, waited, Py_None, Py_None, Py_None, depth};
            rc = add_fields(d, fields);
        }
        Py_XDECREF(id);
        Py_XDECREF(waited);
        Py_XDECREF(depth);
        actor = Py_NewRef(m.actor);
        if (rc == 0 && (detail = message_text(d, m.message)) == NULL)
            rc = -1;
    } else {
        RichSeen *seen = &d->seen[((uintptr_t)v >> 4) % SN_RICH_CACHE];
        if (seen->ev != v) {
            PyObject *a = PySequence_GetItem(v, 0), *f = NULL, *x = NULL, *text = NULL;
            if (a != NULL && (f = call2(d->rich_values, v, d->locations)) != NULL && (x = PySequence_GetItem(v, 2)) != NULL)
                text = message_text(d, x);
            Py_XDECREF(x);
            if (text != NULL && (!PyTuple_CheckExact(f) || PyTuple_GET_SIZE(f) != SN_RICH_FIELDS)) {
                PyErr_SetString(PyExc_TypeError, "rich_values must return a tuple of the RICH_FIELDS");
                Py_CLEAR(text);
            }
            if (text == NULL) {
                Py_XDECREF(a);
                Py_XDECREF(f);
                goto done;
            }
            Py_XSETREF(seen->ev, Py_NewRef(v));
            Py_XSETREF(seen->actor, a);
            Py_XSETREF(seen->fields, f);
            Py_XSETREF(seen->detail, text);
        }
        actor = Py_NewRef(seen->actor);
        detail = Py_NewRef(seen->detail);
        rc = add_fields(d, &PyTuple_GET_ITEM(seen->fields, 0));
    }
    if (rc == 0)
        rc = PyDict_SetItem(d->actor, key, actor);
done:
    Py_XDECREF(key);
    Py_XDECREF(actor);
    if (rc < 0)
        Py_CLEAR(detail);
    return detail;
}

/* The detail of a call event of site s with kept value v (new reference). */
static PyObject *call_detail(DecoderObject *d, Py_ssize_t row, Py_ssize_t s, PyObject *v) {
    if (s >= d->nsites) {
        PyErr_SetString(PyExc_IndexError, "list index out of range");
        return NULL;
    }
    PyObject *pair = NULL, *r = NULL;
    int gen = PyObject_IsTrue(PyList_GET_ITEM(d->gens, s));
    if (gen < 0)
        return NULL;
    if (gen) { /* fid[row], v = v */
        pair = PyTuple_CheckExact(v) ? Py_NewRef(v) : PySequence_Tuple(v);
        if (pair == NULL)
            return NULL;
        if (PyTuple_GET_SIZE(pair) != 2) {
            PyErr_Format(PyExc_ValueError, PyTuple_GET_SIZE(pair) < 2 ? "not enough values to unpack (expected 2, got %zd)"
                                                                    : "too many values to unpack (expected 2)",
                         PyTuple_GET_SIZE(pair));
            goto done;
        }
        if (put(d->fid, row, PyTuple_GET_ITEM(pair, 0)) < 0)
            goto done;
        v = PyTuple_GET_ITEM(pair, 1);
    }
    PyObject *nm = PyList_GET_ITEM(d->names, s);
    if (!PyTuple_CheckExact(nm)) {
        PyErr_SetString(PyExc_TypeError, "argument names must be tuples");
        goto done;
    }
    Py_ssize_t n = PyTuple_GET_SIZE(nm);
    if (n == 1 && hashable_atomic(v)) {
        PyObject *site = PyLong_FromSsize_t(s);
        PyObject *key = site == NULL ? NULL : PyTuple_Pack(3, site, (PyObject *)Py_TYPE(v), v);
        Py_XDECREF(site);
        if (key == NULL)
            goto done;
        r = PyDict_GetItemWithError(d->shown, key);
        if (r != NULL) {
            Py_INCREF(r);
        } else if (!PyErr_Occurred()) {
            PyObject *prefix = site_prefix(d, s, nm);
            if (prefix != NULL)
                r = named(PyTuple_GET_ITEM(prefix, 0), arg_text(d, v));
            if (r != NULL && PyDict_SetItem(d->shown, key, r) < 0)
                Py_CLEAR(r);
        }
        Py_DECREF(key);
    } else if (n == 0) {
        r = Py_NewRef(s_empty);
    } else if (n == 1 && Py_IS_TYPE(v, (PyTypeObject *)d->formatted)) {
        PyObject *prefix = site_prefix(d, s, nm);
        if (prefix != NULL)
            r = named(PyTuple_GET_ITEM(prefix, 0), fstr(formatted_text(d, v)));
    } else if (n == 1) {
        r = call3(d->args_text, d->fmt, nm, v);
    } else {
        r = args_detail(d, s, nm, v);
    }
done:
    Py_XDECREF(pair);
    return r;
}

/* The detail of one event (new reference); fills the sparse dicts. */
static PyObject *event_detail(DecoderObject *d, Py_ssize_t row, uint32_t k, PyObject *v) {
    uint32_t c = k & d->kind_mask;
    PyObject *r;
    if (c == d->c_call)
        return call_detail(d, row, (Py_ssize_t)(k >> d->kind_bits), v);
    if (c == d->c_return) {
        if (plain_text(v, &r))
            return r;
        if (Py_IS_TYPE(v, (PyTypeObject *)d->formatted))
            return formatted_text(d, v);
        return call2(d->show, d->fmt, v);
    }
    if (c == d->c_exception) {
        if (Py_IS_TYPE(v, (PyTypeObject *)d->formatted))
            return formatted_text(d, v);
        return call2(d->show, d->fmt, v);
    }
    if (c == d->c_suspend || c == d->c_resume || c == d->c_switch) {
        if (put(c == d->c_switch ? d->actor : d->fid, row, v) < 0)
            return NULL;
        Py_RETURN_NONE;
    }
    return rich_row(d, row, v);
}

/* Decoder.chunk(ks, vals, row) -> row after the chunk */
static PyObject *decoder_chunk(DecoderObject *d, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "chunk(ks, vals, row) takes 3 arguments");
        return NULL;
    }
    Py_ssize_t row = PyLong_AsSsize_t(args[2]);
    if (row == -1 && PyErr_Occurred())
        return NULL;
    PyObject *ks = args[0], *conv = NULL, *vals = NULL, *result = NULL;
    Py_buffer view;
    int ok = PyObject_GetBuffer(ks, &view, PyBUF_FORMAT | PyBUF_C_CONTIGUOUS) == 0;
    if (ok && (view.itemsize != 4 || view.format == NULL || strcmp(view.format, "I") != 0)) {
        PyBuffer_Release(&view);
        ok = 0;
    }
    if (!ok) { /* not a uint32 column: decoded as array('I', ks) */
        PyErr_Clear();
        conv = PyObject_CallFunction(array_type, "sO", "I", ks);
        if (conv == NULL || PyObject_GetBuffer(conv, &view, PyBUF_FORMAT | PyBUF_C_CONTIGUOUS) < 0) {
            Py_XDECREF(conv);
            return NULL;
        }
    }
    const uint32_t *kp = (const uint32_t *)view.buf;
    Py_ssize_t n = view.len / 4;
    vals = PySequence_Fast(args[1], "vals must be a sequence");
    if (vals == NULL)
        goto done;
    if (PySequence_Fast_GET_SIZE(vals) != n) {
        PyErr_Format(PyExc_ValueError, "zip() argument 2 is %s than argument 1",
                     PySequence_Fast_GET_SIZE(vals) < n ? "shorter" : "longer");
        goto done;
    }
    for (Py_ssize_t i = 0; i < n; i++, row++) {
        /* the list may not change under us: event_detail can run Python code */
        PyObject *v = Py_NewRef(PySequence_Fast_ITEMS(vals)[i]);
        PyObject *text = event_detail(d, row, kp[i], v);
        Py_DECREF(v);
        if (text == NULL)
            goto done;
        int rc = PyList_Append(d->detail, text);
        Py_DECREF(text);
        if (rc < 0)
            goto done;
        if (PySequence_Fast_GET_SIZE(vals) != n) {
            PyErr_SetString(PyExc_RuntimeError, "vals changed size during decoding");
            goto done;
        }
    }
    result = PyLong_FromSsize_t(row);
done:
    Py_XDECREF(vals);
    PyBuffer_Release(&view);
    Py_XDECREF(conv);
    return result;
}

static PyObject *decoder_new(PyTypeObject *type, PyObject *args, PyObject *kwds) {
    static char *kw[] = {"names", "gens", "shown", "locations", "fmt", "formatted", "show", "args_text",
                         "rich_values", "rich_detail", "detail", "fid", "actor", "rich_rows", "rich_cols", "codes",
                         NULL};
    PyObject *o[15], *codes;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O!O!O!O!OOOOOOO!O!O!O!O!O!:Decoder", kw, &PyList_Type, &o[0],
                                     &PyList_Type, &o[1], &PyDict_Type, &o[2], &PyDict_Type, &o[3], &o[4], &o[5],
                                     &o[6], &o[7], &o[8], &o[9], &PyList_Type, &o[10], &PyDict_Type, &o[11],
                                     &PyDict_Type, &o[12], &PyList_Type, &o[13], &PyList_Type, &o[14], &PyTuple_Type,
                                     &codes))
        return NULL;
    if (PyList_GET_SIZE(o[14]) != SN_RICH_FIELDS) {
        PyErr_SetString(PyExc_ValueError, "rich_cols: one list per RICH_FIELDS");
        return NULL;
    }
    for (int i = 0; i < SN_RICH_FIELDS; i++)
        if (!PyList_Check(PyList_GET_ITEM(o[14], i))) {
            PyErr_SetString(PyExc_TypeError, "rich_cols: one list per RICH_FIELDS");
            return NULL;
        }
    Py_ssize_t limits[2];
    const char *limit_names[2] = {"max_items", "max_len"};
    for (int i = 0; i < 2; i++) {
        PyObject *x = PyObject_GetAttrString(o[4], limit_names[i]);
        limits[i] = x == NULL ? -1 : PyLong_AsSsize_t(x);
        Py_XDECREF(x);
        if (limits[i] == -1 && PyErr_Occurred())
            return NULL;
    }
    if (PyList_GET_SIZE(o[0]) != PyList_GET_SIZE(o[1])) {
        PyErr_SetString(PyExc_ValueError, "names and gens differ in length");
        return NULL;
    }
    if (!PyType_Check(o[5])) {
        PyErr_SetString(PyExc_TypeError, "formatted must be a type");
        return NULL;
    }
    unsigned long c[7];
    if (PyTuple_GET_SIZE(codes) != 7) {
        PyErr_SetString(PyExc_ValueError, "codes: (CALL, RETURN, EXCEPTION, SUSPEND, RESUME, SWITCH, KIND_BITS)");
        return NULL;
    }
    for (int i = 0; i < 7; i++) {
        c[i] = PyLong_AsUnsignedLong(PyTuple_GET_ITEM(codes, i));
        if (c[i] == (unsigned long)-1 && PyErr_Occurred())
            return NULL;
    }
    if (c[6] == 0 || c[6] > 16) {
        PyErr_SetString(PyExc_ValueError, "codes: KIND_BITS out of range");
        return NULL;
    }
    Py_ssize_t off;
    if (sn_member_offset(o[5], "text", &off) < 0)
        return NULL;
    DecoderObject *d = (DecoderObject *)type->tp_alloc(type, 0);
    if (d == NULL)
        return NULL;
    d->nsites = PyList_GET_SIZE(o[0]);
    d->prefix = PyMem_Calloc((size_t)d->nsites + 1, sizeof(PyObject *));
    if (d->prefix == NULL) {
        Py_DECREF(d);
        return PyErr_NoMemory();
    }
    PyObject **slots[15] = {&d->names, &d->gens, &d->shown, &d->locations, &d->fmt, &d->formatted, &d->show,
                            &d->args_text, &d->rich_values, &d->rich_detail, &d->detail, &d->fid, &d->actor,
                            &d->rich_rows, &d->rich_cols};
    for (int i = 0; i < 15; i++)
        *slots[i] = Py_NewRef(o[i]);
    d->max_items = limits[0];
    d->max_len = limits[1];
    /* The columns hold text, numbers, None and tuples of text: no cycle. Untracked,
     * the collections that a long decode triggers do not traverse them again and
     * again (each holds a row per event). */
    PyObject *columns[5] = {d->detail, d->fid, d->actor, d->rich_rows, d->rich_cols};
    for (int i = 0; i < 5; i++)
        if (PyObject_GC_IsTracked(columns[i]))
            PyObject_GC_UnTrack(columns[i]);
    for (int i = 0; i < SN_RICH_FIELDS; i++)
        if (PyObject_GC_IsTracked(PyList_GET_ITEM(d->rich_cols, i)))
            PyObject_GC_UnTrack(PyList_GET_ITEM(d->rich_cols, i));
    d->text_off = off;
    d->c_call = (uint32_t)c[0];
    d->c_return = (uint32_t)c[1];
    d->c_exception = (uint32_t)c[2];
    d->c_suspend = (uint32_t)c[3];
    d->c_resume = (uint32_t)c[4];
    d->c_switch = (uint32_t)c[5];
    d->kind_bits = (uint32_t)c[6];
    d->kind_mask = (1u << d->kind_bits) - 1;
    return (PyObject *)d;
}

static int decoder_traverse(DecoderObject *d, visitproc visit, void *arg) {
    Py_VISIT(d->names);
    Py_VISIT(d->gens);
    Py_VISIT(d->shown);
    Py_VISIT(d->locations);
    Py_VISIT(d->fmt);
    Py_VISIT(d->formatted);
    Py_VISIT(d->show);
    Py_VISIT(d->args_text);
    Py_VISIT(d->rich_values);
    Py_VISIT(d->rich_detail);
    Py_VISIT(d->detail);
    Py_VISIT(d->fid);
    Py_VISIT(d->actor);
    Py_VISIT(d->rich_rows);
    Py_VISIT(d->rich_cols);
    for (int i = 0; i < SN_RICH_CACHE; i++) {
        Py_VISIT(d->seen[i].ev);
        Py_VISIT(d->seen[i].actor);
        Py_VISIT(d->seen[i].fields);
        Py_VISIT(d->seen[i].detail);
    }
    return 0;
}

static int decoder_clear(DecoderObject *d) {
    Py_CLEAR(d->names);
    Py_CLEAR(d->gens);
    Py_CLEAR(d->shown);
    Py_CLEAR(d->locations);
    Py_CLEAR(d->fmt);
    Py_CLEAR(d->formatted);
    Py_CLEAR(d->show);
    Py_CLEAR(d->args_text);
    Py_CLEAR(d->rich_values);
    Py_CLEAR(d->rich_detail);
    Py_CLEAR(d->detail);
    Py_CLEAR(d->fid);
    Py_CLEAR(d->actor);
    Py_CLEAR(d->rich_rows);
    Py_CLEAR(d->rich_cols);
    for (int i = 0; i < SN_RICH_CACHE; i++) {
        Py_CLEAR(d->seen[i].ev);
        Py_CLEAR(d->seen[i].actor);
        Py_CLEAR(d->seen[i].fields);
        Py_CLEAR(d->seen[i].detail);
    }
    if (d->prefix != NULL)
        for (Py_ssize_t i = 0; i < d->nsites; i++)
            Py_CLEAR(d->prefix[i]);
    return 0;
}

static void decoder_dealloc(DecoderObject *d) {
    PyObject_GC_UnTrack(d);
    decoder_clear(d);
    PyMem_Free(d->prefix);
    Py_TYPE(d)->tp_free((PyObject *)d);
}

static PyMethodDef decoder_methods[] = {
    {"chunk", (PyCFunction)(void (*)(void))decoder_chunk, METH_FASTCALL,
     "chunk(ks, vals, row) -> row: decode one chunk's events from `row` on; returns the next row."},
    {NULL},
};

static PyTypeObject DecoderType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "scope_nb.recorder._fasthooks.Decoder",
    .tp_doc = "The per-event loop of scope_nb.decode.decode() (same output), for one decode() call.",
    .tp_basicsize = sizeof(DecoderObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_new = decoder_new,
    .tp_dealloc = (destructor)decoder_dealloc,
    .tp_traverse = (traverseproc)decoder_traverse,
    .tp_clear = (inquiry)decoder_clear,
    .tp_methods = decoder_methods,
};

/* ------------------------------------------------------------------------ */

/* A sealed chunk's event list is never changed again and nothing outside the recorder
 * refers to it, so it cannot be part of a reference cycle: left tracked, every full
 * collection of the garbage collector would walk every event recorded so far. */
static PyObject *seal_list(PyObject *module, PyObject *list) {
    if (!PyList_CheckExact(list)) {
        PyErr_Format(PyExc_TypeError, "seal_list needs a list, got %.200s", Py_TYPE(list)->tp_name);
        return NULL;
    }
    if (PyObject_GC_IsTracked(list))
        PyObject_GC_UnTrack(list);
    Py_RETURN_NONE;
}

static PyMethodDef module_methods[] = {
    {"seal_list", (PyCFunction)seal_list, METH_O,
     "seal_list(vals): stop the garbage collector from walking a sealed chunk's event list."},
    {NULL},
};

static struct PyModuleDef fasthooks_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "scope_nb.recorder._fasthooks",
    .m_doc = "C versions of the recorder's hot paths and of the decode loop (optional; see backends.py, locks.py, "
             "messages.py, decode.py).",
    .m_size = -1,
    .m_methods = module_methods,
};

#define INTERN(var, text)                                   \
    do {                                                    \
        if ((var = PyUnicode_InternFromString(text)) == NULL) \
            return NULL;                                    \
    } while (0)

PyMODINIT_FUNC PyInit__fasthooks(void) {
    INTERN(s_seal, "seal");
    INTERN(s_call, "call");
    INTERN(s_return, "return");
    INTERN(s_yield, "yield");
    INTERN(s_resume, "resume");
    INTERN(s_trace_everything, "trace_everything");
    INTERN(s_co_varnames, "co_varnames");
    INTERN(s_co_cellvars, "co_cellvars");
    INTERN(s_site_kcall, "kcall");
    INTERN(s_site_kret, "kret");
    INTERN(s_site_ksuspend, "ksuspend");
    INTERN(s_site_kresume, "kresume");
    INTERN(s_site_is_gen, "is_gen");
    INTERN(s_site_plain_single, "plain_single");
    INTERN(s_site_getter, "getter");
    INTERN(s_site_argnames, "argnames");
    INTERN(s_site_secret, "secret");
    INTERN(s_true_text, "True");
    INTERN(s_false_text, "False");
    INTERN(s_none_text, "None");
    INTERN(s_empty, "");
    INTERN(s_sep, ", ");
    INTERN(s_eq, "=");
    INTERN(s_text, "text");
    PyObject *arr = PyImport_ImportModule("array");
    if (arr == NULL)
        return NULL;
    array_type = PyObject_GetAttrString(arr, "array");
    Py_DECREF(arr);
    if (array_type == NULL)
        return NULL;
    if (PyType_Ready(&ColType) < 0 || PyType_Ready(&HooksType) < 0 || PyType_Ready(&DecoderType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&fasthooks_module);
    if (m == NULL)
        return NULL;
    if (PyModule_AddObjectRef(m, "Col", (PyObject *)&ColType) < 0 ||
        PyModule_AddObjectRef(m, "Hooks", (PyObject *)&HooksType) < 0 ||
        PyModule_AddObjectRef(m, "Decoder", (PyObject *)&DecoderType) < 0 || sn_add_lock_types(m) < 0 ||
        sn_add_queue_types(m) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
