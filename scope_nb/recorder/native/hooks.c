/* The hot call callbacks of scope_nb.recorder.backends, in C.
 *
 * Optional: when this module does not import (or SCOPE_NB_PURE is set), the Python
 * closures of backends/ run instead and record exactly the same events.
 *
 * Hooks: one per recording. `on_start` / `on_return` are the sys.monitoring
 * PY_START / PY_RETURN callbacks (3.12+); `install_profile()` installs a C profile
 * function (3.11). Sites are looked up by code pointer in a table of our own (filled
 * from Recorder.site_by_code on first sight); the thread's buffer is cached per OS
 * thread and recording. Anything unusual goes to the Python callbacks, which are the
 * reference behaviour. When sampling, the hooks take the seeded decisions of
 * backends.capture.Capture.keep / .kept in the buffer's own slots (sample_keep, sample_kept).
 *
 * Arguments are read from the starting frame's fast locals through the private frame
 * mirror of this exact Python (frame_3XX.h) once buffer.py's self-test verified it,
 * else through PyFrame_GetVar (3.12+) or the Python args_of.
 */
#include "native.h"

#ifndef SN_FRAME_MIRROR
typedef struct sn_iframe sn_iframe; /* opaque: no mirror for this Python, never read */
#endif

int sn_frames_mirror = 0;

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
    PyObject *names; /* the argument names (a tuple), for PyFrame_GetVar */
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
    /* sampling (sample_rate < 1): the store's mask of decisions (bytes of SN_MASK_LEN)
     * and its `dropped` counters; NULL when every call is recorded */
    PyObject *mask, *dropped;
    PyObject *gens;                /* Store.gens_kept: generator frames whose call was kept */
    Py_ssize_t off_pos, off_stack; /* ThreadBuffer.pos, .stack */
    int capture_args;
    int yield_op, resume_op; /* 3.11: generators' YIELD_VALUE and RESUME opcodes (-1: unknown) */
    Slot *table;
    Py_ssize_t size, used; /* size: a power of two */
} HooksObject;

static PyTypeObject HooksType;
#define SN_MASK_LEN 4096 /* buffer.MASK_BITS */

static PyObject *s_sampled, *s_seal, *s_call, *s_return, *s_yield, *s_resume, *s_trace_everything, *s_co_varnames, *s_co_cellvars;
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
    Py_XDECREF(si->names);
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
            si->names = Py_NewRef(names);
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


/* ---- sampling: the decisions of backends.capture.Capture.keep / .kept ----------------
 * Kept in the buffer's own `pos` and `stack` slots, which the Python callbacks that
 * still run (exceptions, a code's first sight) read and write too: the decisions
 * stay one sequence per thread, and the same mask gives the same calls either way. */

/* store.dropped["sampled"] += 1 */
static int count_sampled(HooksObject *h) {
    PyObject *n = PyDict_GetItemWithError(h->dropped, s_sampled); /* borrowed */
    if (n == NULL) {
        if (!PyErr_Occurred())
            PyErr_SetObject(PyExc_KeyError, s_sampled);
        return -1;
    }
    PyObject *one = PyLong_FromLong(1);
    PyObject *m = one ? PyNumber_Add(n, one) : NULL;
    Py_XDECREF(one);
    if (m == NULL)
        return -1;
    int rc = PyDict_SetItem(h->dropped, s_sampled, m);
    Py_DECREF(m);
    return rc;
}

/* A call (or a resume) starts: advance the thread's position, look its decision up in
 * the mask and push it. 1: record it; 0: dropped (counted); -1: error. */
static int sample_keep(HooksObject *h, PyObject *b) {
    PyObject *pos = buf_slot(b, h->off_pos), *stack = buf_slot(b, h->off_stack);
    if (pos == NULL || stack == NULL)
        return -1;
    if (!PyList_CheckExact(stack)) {
        PyErr_SetString(PyExc_TypeError, "thread buffer stack is not a list");
        return -1;
    }
    Py_ssize_t p = PyLong_AsSsize_t(pos);
    if (p == -1 && PyErr_Occurred())
        return -1;
    PyObject *next = PyLong_FromSsize_t(p + 1);
    if (next == NULL)
        return -1;
    Py_SETREF(SN_SLOT(b, h->off_pos), next);
    int keep = PyBytes_AS_STRING(h->mask)[(p + 1) & (SN_MASK_LEN - 1)] != 0;
    if (PyList_Append(stack, keep ? Py_True : Py_False) < 0)
        return -1;
    if (!keep && count_sampled(h) < 0)
        return -1;
    return keep;
}

/* A call ends (returns or suspends): pop its decision. 1: it was recorded; 0: it was
 * not, or its start was never seen (counted); -1: error. */
static int sample_kept(HooksObject *h, PyObject *b) {
    PyObject *stack = buf_slot(b, h->off_stack);
    if (stack == NULL)
        return -1;
    if (!PyList_CheckExact(stack)) {
        PyErr_SetString(PyExc_TypeError, "thread buffer stack is not a list");
        return -1;
    }
    Py_ssize_t n = PyList_GET_SIZE(stack);
    if (n > 0) {
        PyObject *top = Py_NewRef(PyList_GET_ITEM(stack, n - 1));
        int was = PyList_SetSlice(stack, n - 1, n, NULL) < 0 ? -1 : PyObject_IsTrue(top);
        Py_DECREF(top);
        if (was != 0)
            return was;
    }
    return count_sampled(h) < 0 ? -1 : 0;
}

/* A generator's or coroutine's frame (`first`: its first start, else a resume): its
 * first start takes the next decision and remembers it for the frame; each resume
 * follows that decision, so a generator is recorded whole or not at all (its call,
 * every suspend and resume, its end). 1: record it; 0: dropped (counted); -1: error. */
static int sample_gen(HooksObject *h, PyObject *b, void *frame, int first) {
    PyObject *fid = PyLong_FromVoidPtr(frame);
    if (fid == NULL)
        return -1;
    int keep;
    if (first) {
        keep = sample_keep(h, b);
        if (keep >= 0 && (keep ? PySet_Add(h->gens, fid) : PySet_Discard(h->gens, fid)) < 0)
            keep = -1;
    } else {
        keep = PySet_Contains(h->gens, fid);
        PyObject *stack = keep < 0 ? NULL : buf_slot(b, h->off_stack);
        if (stack == NULL || !PyList_CheckExact(stack))
            keep = -1;
        else if (PyList_Append(stack, keep ? Py_True : Py_False) < 0 || (!keep && count_sampled(h) < 0))
            keep = -1;
    }
    Py_DECREF(fid);
    return keep;
}

/* A generator's frame ended (returned, or an exception left it): forget its decision. */
static int sample_gen_end(HooksObject *h, void *frame) {
    PyObject *fid = PyLong_FromVoidPtr(frame);
    int rc = fid == NULL ? -1 : PySet_Discard(h->gens, fid);
    Py_XDECREF(fid);
    return rc < 0 ? -1 : 0;
}

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

/* The arguments of a call starting now, from `frame` (the traced function's own
 * interpreter frame read through the mirror, or NULL when unknown or the mirror is
 * off): one argument, or a tuple with the secret ones redacted. New reference; NULL
 * with no error set when the frame cannot tell (an unbound local), the caller then
 * asks the public path. */
static PyObject *mirror_args(HooksObject *h, PyObject *b, SiteInfo *si, PyObject *code, sn_iframe *frame) {
#ifdef SN_FRAME_MIRROR
    if (frame == NULL || sn_frame_code(frame) != code)
        return NULL;
    if (si->plain_single) {
        PyObject *x = sn_frame_local(frame, si->idx[0]);
        return x == NULL ? NULL : keep_value(h, b, x);
    }
    if (si->nargs == 1)
        return Py_NewRef(h->redacted); /* a single secret argument */
    Py_ssize_t n = si->nargs, i;
    for (i = 0; i < n; i++)
        if (sn_frame_local(frame, si->idx[i]) == NULL)
            return NULL;
    PyObject *out = PyTuple_New(n);
    if (out == NULL)
        return NULL;
    for (i = 0; i < n; i++) {
        PyObject *x = si->secret[i] ? Py_NewRef(h->redacted) : keep_value(h, b, sn_frame_local(frame, si->idx[i]));
        if (x == NULL) {
            Py_DECREF(out);
            return NULL;
        }
        PyTuple_SET_ITEM(out, i, x);
    }
    return out;
#else
    (void)h, (void)b, (void)si, (void)code, (void)frame;
    return NULL;
#endif
}

#if PY_VERSION_HEX >= 0x030C0000
/* The same through the public API (PyFrame_GetVar on the frame object), when there is
 * no verified mirror. Same contract as mirror_args; args_of decides what is left. */
static PyObject *public_args(HooksObject *h, PyObject *b, SiteInfo *si, PyObject *frame_obj) {
    if (si->names == NULL)
        return NULL;
    if (!si->plain_single && si->nargs == 1)
        return Py_NewRef(h->redacted); /* a single secret argument */
    Py_ssize_t n = si->plain_single ? 1 : si->nargs;
    PyObject *out = NULL;
    if (!si->plain_single && (out = PyTuple_New(n)) == NULL)
        return NULL;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *x;
        if (!si->plain_single && si->secret[i]) {
            x = Py_NewRef(h->redacted);
        } else {
            PyObject *raw = PyFrame_GetVar((PyFrameObject *)frame_obj, PyTuple_GET_ITEM(si->names, i));
            if (raw == NULL) {
                PyErr_Clear(); /* unbound */
                Py_XDECREF(out);
                return NULL;
            }
            x = keep_value(h, b, raw);
            Py_DECREF(raw);
            if (x == NULL) {
                Py_XDECREF(out);
                return NULL;
            }
        }
        if (si->plain_single)
            return x;
        PyTuple_SET_ITEM(out, i, x);
    }
    return out;
}
#endif

/* The arguments of a call starting now in `frame` (the traced function's own frame
 * through the verified mirror, or NULL), as backends/ records them. New reference. */
static PyObject *call_value(HooksObject *h, PyObject *b, SiteInfo *si, PyObject *code, sn_iframe *frame,
                            PyObject *frame_obj) {
    if (!h->capture_args || si->args == ARGS_NONE)
        Py_RETURN_NONE;
    if (si->args == ARGS_FAST && frame != NULL) {
        PyObject *v = mirror_args(h, b, si, code, frame);
        if (v != NULL || PyErr_Occurred())
            return v;
    }
    if (frame_obj == NULL) {
        frame_obj = (PyObject *)PyEval_GetFrame();
        if (frame_obj == NULL)
            Py_RETURN_NONE;
    }
#if PY_VERSION_HEX >= 0x030C0000
    if (si->args == ARGS_FAST && frame == NULL) {
        PyObject *v = public_args(h, b, si, frame_obj);
        if (v != NULL || PyErr_Occurred())
            return v;
    }
#endif
    PyObject *args[3] = {b, si->site, frame_obj};
    return PyObject_Vectorcall(h->args_of, args, 3, NULL);
}

/* The running interpreter frame for mirror_args, NULL unless the mirror was verified. */
static inline sn_iframe *checked_current_frame(void) {
#ifdef SN_FRAME_MIRROR
    return sn_frames_mirror ? sn_current_frame() : NULL;
#else
    return NULL;
#endif
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
    if (h->mask != NULL && (si->is_gen ? sample_gen(h, b, PyEval_GetFrame(), 1) : sample_keep(h, b)) <= 0)
        goto out;
    PyObject *v = call_value(h, b, si, code, checked_current_frame(), NULL);
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
    if (on > 0 && h->mask != NULL && !yielded && si->is_gen && sample_gen_end(h, PyEval_GetFrame()) < 0)
        goto out;
    if (on <= 0 || (h->mask != NULL && sample_kept(h, b) <= 0))
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
    if (entering(h, b) <= 0 || (h->mask != NULL && sample_gen(h, b, PyEval_GetFrame(), 0) <= 0))
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

/* A frame object's fields, through the mirror once verified, else the public API. */
static inline PyObject *pyframe_code(PyFrameObject *f) {
    if (sn_frames_mirror)
        return sn_frame_code(((sn_frameobject *)f)->f_frame);
    PyCodeObject *c = PyFrame_GetCode(f); /* f keeps it alive: returned borrowed */
    Py_DECREF(c);
    return (PyObject *)c;
}

static inline sn_iframe *pyframe_iframe(PyFrameObject *f) {
    return sn_frames_mirror ? ((sn_frameobject *)f)->f_frame : NULL;
}

/* ProfileBackend.hook's mark on a recorded frame: f_trace_lines off, f_trace the
 * exception tracer. */
static int pyframe_mark(HooksObject *h, PyFrameObject *f) {
    if (sn_frames_mirror) {
        sn_frameobject *fo = (sn_frameobject *)f;
        fo->f_trace_lines = 0;
        Py_XSETREF(fo->f_trace, Py_NewRef(h->exc_tracer));
        return 0;
    }
    if (PyObject_SetAttrString((PyObject *)f, "f_trace_lines", Py_False) < 0)
        return -1;
    return PyObject_SetAttrString((PyObject *)f, "f_trace", h->exc_tracer);
}

/* f_trace (borrowed; the frame keeps it), NULL when none. */
static inline PyObject *pyframe_trace(PyFrameObject *f) {
    if (sn_frames_mirror)
        return ((sn_frameobject *)f)->f_trace;
    PyObject *t = PyObject_GetAttrString((PyObject *)f, "f_trace");
    if (t == NULL) {
        PyErr_Clear();
        return NULL;
    }
    Py_DECREF(t);
    return t;
}

/* fault() for a profile function: 0, or -1 when an exception must propagate */
static int fault_rc(HooksObject *h, PyObject *where) {
    PyObject *r = fault(h, where);
    if (r == NULL)
        return -1;
    Py_DECREF(r);
    return 0;
}

/* backends.profile.ProfileBackend forgets a frame's pending exception when it ends */
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
    PyObject *code = pyframe_code(frame);
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
    /* a generator or coroutine: a first start is its call, a later one a resume */
    int first = 1;
    if (si->is_gen) {
        int lasti = PyFrame_GetLasti(frame);
        if (lasti >= 0) {
            PyObject *co = PyCode_GetCode((PyCodeObject *)code);
            if (co == NULL)
                goto out;
            const unsigned char *ops = (const unsigned char *)PyBytes_AS_STRING(co);
            first = lasti + 1 < PyBytes_GET_SIZE(co) && ops[lasti] == h->resume_op && ops[lasti + 1] == 0;
            Py_DECREF(co);
        }
    }
    if (h->mask != NULL && (si->is_gen ? sample_gen(h, b, frame, first) : sample_keep(h, b)) <= 0)
        goto out;
    if (h->exc_tracer != Py_None) {
        if (pyframe_mark(h, frame) < 0)
            goto out;
    }
    if (si->is_gen) {
        PyObject *fid = PyLong_FromVoidPtr(frame);
        if (fid == NULL)
            goto out;
        if (!first) {
            append_event(h, b, fid, si->kresume, 0, 1);
            goto out;
        }
        PyObject *v = call_value(h, b, si, code, pyframe_iframe(frame), (PyObject *)frame);
        PyObject *pair = v == NULL ? NULL : PyTuple_Pack(2, fid, v);
        Py_DECREF(fid);
        Py_XDECREF(v);
        if (pair != NULL)
            append_event(h, b, pair, si->kcall, 0, 1);
        goto out;
    }
    PyObject *v = call_value(h, b, si, code, pyframe_iframe(frame), (PyObject *)frame);
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
    PyObject *code = pyframe_code(frame);
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
    if (on > 0 && h->mask != NULL && !yielded && si->is_gen && sample_gen_end(h, frame) < 0)
        goto out;
    if (on <= 0 || (h->mask != NULL && sample_kept(h, b) <= 0))
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
    if (what != PyTrace_EXCEPTION || !is_exc_mark(h, pyframe_trace(frame)))
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
                             "py_resume", "gen_ops", "current_task", "mask", "dropped", "gens", NULL};
    PyObject *rec, *local, *new_buffer, *sync_task, *faultf, *cap, *args_of, *sites, *buffer_type, *redacted;
    PyObject *py_start = Py_None, *py_return = Py_None, *disable = Py_None, *py_hook = Py_None,
             *exc_tracer = Py_None, *return_ops = NULL, *exc_pending = Py_None, *py_yield = Py_None,
             *py_resume = Py_None;
    int yield_op = -1, resume_op = -1;
    PyObject *current_task = Py_None, *mask = Py_None, *dropped = Py_None, *gens = Py_None;
    Py_ssize_t chunk;
    int capture_args;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOOOOOOO!npOO|OOOOOOOOO(ii)OOOO:Hooks", kwlist, &rec, &local, &new_buffer,
                                     &sync_task, &faultf, &cap, &args_of, &PyDict_Type, &sites, &chunk,
                                     &capture_args, &buffer_type, &redacted, &py_start, &py_return, &disable,
                                     &py_hook, &exc_tracer, &return_ops, &exc_pending, &py_yield, &py_resume, &yield_op,
                                     &resume_op, &current_task, &mask, &dropped, &gens))
        return NULL;
    if (mask != Py_None && (!PyBytes_CheckExact(mask) || PyBytes_GET_SIZE(mask) != SN_MASK_LEN || !PyDict_Check(dropped) ||
                            !PySet_Check(gens))) {
        PyErr_Format(PyExc_TypeError, "Hooks: mask must be bytes of %d decisions, with a dropped dict and a gens set",
                     SN_MASK_LEN);
        return NULL;
    }
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
    if (mask != Py_None) {
        if (sn_member_offset(buffer_type, "pos", &h->off_pos) < 0 || sn_member_offset(buffer_type, "stack", &h->off_stack) < 0) {
            Py_DECREF(h);
            return NULL;
        }
        h->mask = Py_NewRef(mask);
        h->dropped = Py_NewRef(dropped);
        h->gens = Py_NewRef(gens);
    }
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
    Py_VISIT(h->mask);
    Py_VISIT(h->dropped);
    Py_VISIT(h->gens);
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
    Py_CLEAR(h->mask);
    Py_CLEAR(h->dropped);
    Py_CLEAR(h->gens);
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


#define INTERN(var, text)                                       \
    do {                                                        \
        if ((var = PyUnicode_InternFromString(text)) == NULL)   \
            return -1;                                          \
    } while (0)

int sn_add_hooks_type(PyObject *module) {
    INTERN(s_sampled, "sampled");
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
    if (PyType_Ready(&HooksType) < 0)
        return -1;
    return PyModule_AddObjectRef(module, "Hooks", (PyObject *)&HooksType);
}
