/* Traced Lock / RLock in C (see locks.py, whose Python methods are the reference).
 *
 * Time spent inside a lock is time the other threads wait for it: with the
 * bookkeeping of a traced acquire and release in Python (~1 us each), a lock that
 * was never contended becomes a convoy. Here the uncontended acquire and every
 * release record their event and update who holds what in C; the contended wait,
 * the lock-order check of a nested acquire and everything rare stay in Python.
 *
 * - LockHub: one per recording (LockState.hub): the thread's buffer, the event codes
 *   and LockState's own dicts `held`, `taken_at`, shared with Python.
 * - LockCore: the base type of locks.TracedLock / TracedRLock: slots `_lock` (the
 *   real lock), `name`, `_st`, `_hub`, `_depth`, `_owners` (its list in
 *   LockState.owners), `_taken`, and acquire / release / __enter__ / __exit__. A
 *   reentrant core records only the outermost acquire and release. The real lock's
 *   own methods are called as C functions (no lookup, no argument tuple).
 *   A release is stamped, then done, then recorded: nothing runs while the lock is
 *   still held, and a release that raises (the lock was not held) records nothing.
 */
#include "native.h"

#define NHELD 8

typedef struct {
    PyObject_HEAD
    SnBuffers bufs;
    PyObject *fault, *skip, *held, *taken_at, *order, *zero, *empty;
    PyObject *tried; /* schema.TRY_ACQUIRE: the function of a non-blocking acquire's event */
    /* recent actors and their lists in `held` (a list, once made, stays an actor's) */
    PyObject *held_actor[NHELD], *held_list[NHELD];
    unsigned char held_next;
    uint32_t k_acquire, k_release;
    double timeout_max;
    char running; /* mirrors Recorder.running (Recorder.switches) */
} HubObject;

/* Recent events of one lock, reused while actor, location and locks held repeat (a
 * lock taken in a loop): no allocation, so nothing for the allocator, the page
 * faults and the garbage collector to do. `code` and `lasti` are the event's
 * location (code borrowed from it; NULL: none). */
#define NCACHE 4
typedef struct {
    PyObject *ev;
    PyCodeObject *code;
    int lasti;
} Cached;

typedef struct {
    PyObject_HEAD
    PyObject *lock, *name, *st, *hub;
    /* LockState.owners[name] (the actors holding it), shared; `taken`: where its owner
     * took it when the C path did (else LockState.taken_at has it), or NULL */
    PyObject *owners, *taken;
    /* the real lock's acquire, release and locked / _is_owned as C functions, called
     * without a method lookup or an argument tuple (NULL: looked up per call) */
    PyCFunctionWithKeywords acquire_fn;
    PyCFunction release_fn, owned_fn;
    Py_ssize_t depth;
    char reentrant;
    unsigned char next_acq, next_rel;
    Cached acq[NCACHE], rel[NCACHE];
    PyObject *weakreflist;
} LockCoreObject;

static PyTypeObject HubType, LockCoreType;
static PyObject *s_acquire, *s_release, *s_locked, *s_is_owned, *s_wait, *s_blocking,
    *s_timeout, *s_took, *s_dropped, *minus_one, *false_args;

/* Where the lock is used: the first frame outside the lock machinery (h->skip holds
 * those files), as locks.where() finds it. A frame whose code is that of an event
 * in `cache` is one (no set lookup). 0: *code (new reference) and *lasti set; 1: no
 * such frame; -1: error. */
static int hub_site(HubObject *h, Cached *cache, PyCodeObject **code, int *lasti) {
    PyFrameObject *f = (PyFrameObject *)Py_XNewRef(PyEval_GetFrame());
    while (f != NULL) {
        PyCodeObject *c = PyFrame_GetCode(f);
        int skip = -2;
        for (int i = 0; i < NCACHE && skip == -2; i++)
            if (cache[i].code == c)
                skip = 0;
        if (skip == -2)
            skip = PySet_Contains(h->skip, c->co_filename);
        if (skip == 0) {
            *code = c;
            *lasti = PyFrame_GetLasti(f);
            Py_DECREF(f);
            return 0;
        }
        Py_DECREF(c);
        if (skip < 0) {
            Py_DECREF(f);
            return -1;
        }
        PyFrameObject *back = PyFrame_GetBack(f);
        Py_DECREF(f);
        f = back;
    }
    return 1;
}

/* The names in `before` (a tuple) are those in `held` (a list or NULL). */
static int same_held(PyObject *before, PyObject *held) {
    Py_ssize_t n = PyTuple_GET_SIZE(before);
    if (n != (held == NULL ? 0 : PyList_GET_SIZE(held)))
        return 0;
    for (Py_ssize_t i = 0; i < n; i++)
        if (PyTuple_GET_ITEM(before, i) != PyList_GET_ITEM(held, i))
            return 0;
    return 1;
}

/* The event tuple of a lock event (borrowed from the lock's cache): (actor, name,
 * None, None, None, location, waited, None, function, locks held before, None) as
 * LockState builds it (function: None, or h->tried for a non-blocking acquire). */
static Cached *lock_event(HubObject *h, LockCoreObject *self, Cached *cache, unsigned char *next, PyObject *actor,
                          PyObject *held, PyObject *waited, PyObject *function) {
    PyCodeObject *code = NULL;
    int lasti = 0, found = hub_site(h, cache, &code, &lasti);
    if (found < 0)
        return NULL;
    for (int i = 0; i < NCACHE; i++) {
        PyObject *ev = cache[i].ev;
        if (ev != NULL && cache[i].code == code && cache[i].lasti == lasti && PyTuple_GET_ITEM(ev, 0) == actor &&
            PyTuple_GET_ITEM(ev, 8) == function && same_held(PyTuple_GET_ITEM(ev, 9), held)) {
            Py_XDECREF(code);
            return &cache[i];
        }
    }
    PyObject *loc = NULL, *before = NULL, *ev = NULL;
    if (code == NULL) {
        loc = Py_NewRef(Py_None);
    } else {
        PyObject *li = PyLong_FromLong(lasti);
        loc = li == NULL ? NULL : PyTuple_Pack(2, (PyObject *)code, li);
        Py_XDECREF(li);
    }
    if (loc != NULL && (before = held != NULL && PyList_GET_SIZE(held) ? PyList_AsTuple(held) : Py_NewRef(h->empty)))
        ev = PyTuple_Pack(11, actor, self->name, Py_None, Py_None, Py_None, loc, waited, Py_None, function, before,
                          Py_None);
    Py_XDECREF(before);
    Py_XDECREF(code); /* the event's location keeps it */
    if (ev == NULL) {
        Py_XDECREF(loc);
        return NULL;
    }
    /* only strings, ints, None, code objects and tuples of those: no cycle possible */
    if (loc != Py_None)
        PyObject_GC_UnTrack(loc);
    Py_DECREF(loc);
    PyObject_GC_UnTrack(ev);
    Cached *hit = &cache[*next % NCACHE];
    *next = (unsigned char)((*next + 1) % NCACHE);
    Py_XSETREF(hit->ev, ev);
    hit->code = code;
    hit->lasti = lasti;
    return hit;
}

/* 0 after a failure counted by rec.fault (the program never sees it); -1 when the
 * exception is not an Exception and must propagate. */
static int hub_fault(HubObject *h, PyObject *where) {
    PyObject *r = sn_report_fault(h->fault, where);
    if (r == NULL)
        return -1;
    Py_DECREF(r);
    return 0;
}

/* The actor's list in LockState.held (borrowed), made when `create`; NULL if none
 * (or on error). */
static PyObject *held_of(HubObject *h, PyObject *actor, int create) {
    for (int i = 0; i < NHELD; i++)
        if (h->held_actor[i] == actor)
            return h->held_list[i];
    PyObject *held = PyDict_GetItemWithError(h->held, actor);
    if (held == NULL) {
        if (PyErr_Occurred() || !create || (held = PyList_New(0)) == NULL)
            return NULL;
        int err = PyDict_SetItem(h->held, actor, held);
        Py_DECREF(held);
        if (err < 0)
            return NULL;
    }
    if (!PyList_Check(held)) {
        PyErr_SetString(PyExc_TypeError, "LockState.held values must be lists");
        return NULL;
    }
    unsigned i = h->held_next++ % NHELD;
    Py_XSETREF(h->held_actor[i], Py_NewRef(actor));
    Py_XSETREF(h->held_list[i], Py_NewRef(held));
    return held;
}

/* LockState.took_at: the lock was taken at once by the running actor (`tried`: by a
 * non-blocking acquire, which orders no locks). */
static int hub_took(HubObject *h, LockCoreObject *self, int tried) {
    /* a strong reference: a rename (trace_lock) while Python code runs here replaces it */
    PyObject *actor = NULL, *held, *name = Py_NewRef(self->name), *ev = NULL;
    int rc = -1;
    PyObject *b = sn_buffer(&h->bufs);
    if (b == NULL || (actor = sn_actor(&h->bufs, b)) == NULL || (held = held_of(h, actor, 1)) == NULL)
        goto done;
    Cached *c = lock_event(h, self, self->acq, &self->next_acq, actor, held, h->zero, tried ? h->tried : Py_None);
    if (c == NULL)
        goto done;
    ev = Py_NewRef(c->ev); /* the cache slot may be replaced or emptied meanwhile */
    if (h->k_acquire && sn_push(&h->bufs, b, h->k_acquire, ev, sn_perf_ns()) < 0)
        goto done;
    PyObject *loc = PyTuple_GET_ITEM(ev, 5), *before = PyTuple_GET_ITEM(ev, 9);
    if (PyList_Append(self->owners, actor) < 0 || PyList_Append(held, name) < 0)
        goto done;
    Py_XSETREF(self->taken, Py_NewRef(loc));
    rc = 0;
    if (PyTuple_GET_SIZE(before) && !tried) { /* `ev` keeps `before` and `loc` alive */
        PyObject *r = PyObject_CallFunctionObjArgs(h->order, before, name, actor, loc, NULL);
        if (r == NULL)
            rc = -1;
        Py_XDECREF(r);
    }
done:
    Py_XDECREF(actor);
    Py_XDECREF(ev);
    Py_DECREF(name);
    return rc == 0 ? 0 : hub_fault(h, s_took);
}

/* Where `item` is in `list`: by identity, else by equality; -1 if absent, -2 on error. */
static Py_ssize_t index_of(PyObject *list, PyObject *item) {
    Py_ssize_t n = PyList_GET_SIZE(list);
    for (Py_ssize_t i = n - 1; i >= 0; i--)
        if (PyList_GET_ITEM(list, i) == item)
            return i;
    for (Py_ssize_t i = n - 1; i >= 0 && i < PyList_GET_SIZE(list); i--) {
        int eq = PyObject_RichCompareBool(PyList_GET_ITEM(list, i), item, Py_EQ);
        if (eq != 0)
            return eq < 0 ? -2 : i;
    }
    return -1;
}

/* del list[i]. The last item goes as list.pop() does, but the list keeps its storage:
 * a lock taken and released in a loop then never frees and reallocates it. */
static int remove_at(PyObject *list, Py_ssize_t i) {
    Py_ssize_t n = PyList_GET_SIZE(list);
    if (i != n - 1)
        return PyList_SetSlice(list, i, i + 1, NULL);
    PyObject *item = PyList_GET_ITEM(list, i);
    Py_SET_SIZE(list, n - 1);
    Py_DECREF(item);
    return 0;
}

/* LockState.dropping + dropped: the lock was released at `t` by the running actor.
 * Its release event (stamped before the real release, so it sorts before the next
 * owner's acquire), then its owner and the owner's held locks lose it. */
static int hub_released(HubObject *h, LockCoreObject *self, int64_t t) {
    PyObject *owners = self->owners, *actor = NULL, *owner = NULL, *key = NULL;
    if (PyList_GET_SIZE(owners) == 0)
        return 0; /* taken before it was traced */
    PyObject *name = Py_NewRef(self->name); /* a rename meanwhile replaces self->name */
    int rc = -1;
    PyObject *b = sn_buffer(&h->bufs);
    if (b == NULL || (actor = sn_actor(&h->bufs, b)) == NULL)
        goto done;
    PyObject *held = held_of(h, actor, 0), *owner_held;
    if (held == NULL && PyErr_Occurred())
        goto done;
    if (h->k_release) {
        Cached *c = lock_event(h, self, self->rel, &self->next_rel, actor, held, Py_None, Py_None);
        if (c == NULL || sn_push(&h->bufs, b, h->k_release, c->ev, t) < 0)
            goto done;
    }
    Py_ssize_t i = index_of(owners, actor);
    if (i == -2)
        goto done;
    if (i >= 0) {
        owner = Py_NewRef(actor);
        owner_held = held;
    } else if (PyList_GET_SIZE(owners) > 0) { /* released by another thread than its owner */
        i = 0;
        owner = Py_NewRef(PyList_GET_ITEM(owners, 0));
        if ((owner_held = held_of(h, owner, 0)) == NULL && PyErr_Occurred())
            goto done;
    } else {
        rc = 0;
        goto done;
    }
    if (remove_at(owners, i) < 0)
        goto done;
    if (owner_held != NULL) {
        Py_ssize_t j = index_of(owner_held, name); /* the most recent acquisition */
        if (j == -2 || (j >= 0 && remove_at(owner_held, j) < 0))
            goto done;
    }
    Py_CLEAR(self->taken);
    /* taken by the Python path (a wait, a Condition): LockState.taken_at has it */
    if (PyDict_GET_SIZE(h->taken_at) > 0) {
        if ((key = PyTuple_Pack(2, owner, name)) == NULL)
            goto done;
        if (PyDict_DelItem(h->taken_at, key) < 0) {
            if (!PyErr_ExceptionMatches(PyExc_KeyError))
                goto done;
            PyErr_Clear();
        }
    }
    rc = 0;
done:
    Py_XDECREF(actor);
    Py_XDECREF(owner);
    Py_XDECREF(key);
    Py_DECREF(name);
    return rc == 0 ? 0 : hub_fault(h, s_dropped);
}

/* ---- LockHub --------------------------------------------------------------- */

static PyObject *hub_new(PyTypeObject *type, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"local", "new_buffer", "buffer_type", "current_actor", "fault", "skip_files",
                             "held", "taken_at", "order", "k_acquire", "k_release", "chunk",
                             "timeout_max", "tried", NULL};
    PyObject *local, *new_buffer, *buffer_type, *current_actor, *faultf, *skip, *held, *taken_at, *order, *tried;
    unsigned int k_acquire, k_release;
    Py_ssize_t chunk;
    double timeout_max;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "$OOOOOO!O!O!OIIndU:LockHub", kwlist, &local, &new_buffer,
                                     &buffer_type, &current_actor, &faultf, &PyFrozenSet_Type, &skip, &PyDict_Type,
                                     &held, &PyDict_Type, &taken_at, &order, &k_acquire,
                                     &k_release, &chunk, &timeout_max, &tried))
        return NULL;
    HubObject *h = (HubObject *)type->tp_alloc(type, 0);
    if (h == NULL)
        return NULL;
    if (sn_buffers_init(&h->bufs, local, new_buffer, buffer_type, current_actor, chunk) < 0) {
        Py_DECREF(h);
        return NULL;
    }
    h->fault = Py_NewRef(faultf);
    h->skip = Py_NewRef(skip);
    h->held = Py_NewRef(held);
    h->taken_at = Py_NewRef(taken_at);
    h->order = Py_NewRef(order);
    h->tried = Py_NewRef(tried);
    h->zero = PyLong_FromLong(0);
    h->empty = PyTuple_New(0);
    h->k_acquire = k_acquire;
    h->k_release = k_release;
    h->timeout_max = timeout_max;
    if (h->zero == NULL || h->empty == NULL) {
        Py_DECREF(h);
        return NULL;
    }
    return (PyObject *)h;
}

static int hub_traverse(HubObject *h, visitproc visit, void *arg) {
    if (sn_buffers_traverse(&h->bufs, visit, arg) < 0)
        return -1;
    Py_VISIT(h->fault);
    Py_VISIT(h->skip);
    Py_VISIT(h->held);
    Py_VISIT(h->taken_at);
    Py_VISIT(h->order);
    for (int i = 0; i < NHELD; i++)
        Py_VISIT(h->held_list[i]);
    return 0;
}

static int hub_clear(HubObject *h) {
    sn_buffers_clear(&h->bufs);
    Py_CLEAR(h->fault);
    Py_CLEAR(h->skip);
    Py_CLEAR(h->held);
    Py_CLEAR(h->taken_at);
    Py_CLEAR(h->order);
    Py_CLEAR(h->tried);
    Py_CLEAR(h->zero);
    Py_CLEAR(h->empty);
    for (int i = 0; i < NHELD; i++) {
        Py_CLEAR(h->held_actor[i]);
        Py_CLEAR(h->held_list[i]);
    }
    return 0;
}

static void hub_dealloc(HubObject *h) {
    PyObject_GC_UnTrack(h);
    hub_clear(h);
    Py_TYPE(h)->tp_free((PyObject *)h);
}

static PyMemberDef hub_members[] = {
    {"running", T_BOOL, offsetof(HubObject, running), 0, "the recording is on (set by Recorder.start / stop)"},
    {NULL},
};

static PyTypeObject HubType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "scope_nb.recorder._fasthooks.LockHub",
    .tp_doc = "One recording's lock bookkeeping for LockCore (see locks.LockState).",
    .tp_basicsize = sizeof(HubObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_new = hub_new,
    .tp_traverse = (traverseproc)hub_traverse,
    .tp_clear = (inquiry)hub_clear,
    .tp_dealloc = (destructor)hub_dealloc,
    .tp_members = hub_members,
};

/* ---- LockCore -------------------------------------------------------------- */

static inline HubObject *hub_of(LockCoreObject *self) {
    return self->hub != NULL && Py_IS_TYPE(self->hub, &HubType) ? (HubObject *)self->hub : NULL;
}

static inline PyObject *call0(PyObject *obj, PyObject *name) {
    return PyObject_VectorcallMethod(name, &obj, 1 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
}

/* The real lock's own method with the caller's arguments: what an untraced lock does,
 * errors included. */
static PyObject *delegate(LockCoreObject *self, PyObject *name, PyObject *const *args, Py_ssize_t nargs,
                          PyObject *kwnames) {
    Py_ssize_t n = nargs + (kwnames ? PyTuple_GET_SIZE(kwnames) : 0);
    PyObject *small[8], **all = n + 1 <= 8 ? small : PyMem_Malloc((size_t)(n + 1) * sizeof(PyObject *));
    if (all == NULL)
        return PyErr_NoMemory();
    all[0] = self->lock;
    for (Py_ssize_t i = 0; i < n; i++)
        all[i + 1] = args[i];
    PyObject *r = PyObject_VectorcallMethod(name, all, (size_t)(nargs + 1), kwnames);
    if (all != small)
        PyMem_Free(all);
    return r;
}

/* timeout == -1, or a finite number the fast path may take (locks._valid). */
static int plain_timeout(HubObject *h, PyObject *timeout, int blocking, int *is_default) {
    double t;
    if (PyLong_CheckExact(timeout)) {
        int overflow;
        long v = PyLong_AsLongAndOverflow(timeout, &overflow);
        if (v == -1 && !overflow && PyErr_Occurred())
            return -1;
        if (overflow) {
            *is_default = 0;
            return 0;
        }
        t = (double)v;
    } else if (PyFloat_CheckExact(timeout)) {
        t = PyFloat_AS_DOUBLE(timeout);
    } else {
        *is_default = 0;
        return 0;
    }
    *is_default = t == -1.0;
    return *is_default || (blocking && t >= 0 && t <= h->timeout_max);
}

static PyObject *lc_acquire(LockCoreObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames) {
    HubObject *h = hub_of(self);
    if (h == NULL || nargs > 2)
        return delegate(self, s_acquire, args, nargs, kwnames);
    PyObject *blocking = nargs > 0 ? args[0] : Py_True, *timeout = nargs > 1 ? args[1] : NULL;
    Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
    for (Py_ssize_t i = 0; i < nkw; i++) {
        PyObject *k = PyTuple_GET_ITEM(kwnames, i);
        if (nargs < 1 && PyUnicode_Compare(k, s_blocking) == 0)
            blocking = args[nargs + i];
        else if (nargs < 2 && PyUnicode_Compare(k, s_timeout) == 0)
            timeout = args[nargs + i];
        else
            return delegate(self, s_acquire, args, nargs, kwnames);
    }
    if (!h->running)
        return delegate(self, s_acquire, args, nargs, kwnames);
    int block = PyObject_IsTrue(blocking);
    if (block < 0)
        return NULL;
    if (timeout != NULL) {
        int is_default, ok = plain_timeout(h, timeout, block, &is_default);
        if (ok < 0)
            return NULL;
        if (!ok)
            return delegate(self, s_acquire, args, nargs, kwnames);
    }
    PyObject *got;
    if (self->acquire_fn != NULL) {
        got = self->acquire_fn(self->lock, false_args, NULL);
    } else {
        PyObject *pair[2] = {self->lock, Py_False};
        got = PyObject_VectorcallMethod(s_acquire, pair, 2 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
    }
    if (got == NULL)
        return NULL;
    int ok = got == Py_True;
    Py_DECREF(got);
    if (ok) {
        if (self->reentrant && ++self->depth != 1)
            Py_RETURN_TRUE;
        if (hub_took(h, self, !block) < 0)
            return NULL;
        Py_RETURN_TRUE;
    }
    if (!block)
        Py_RETURN_FALSE;
    PyObject *frame = (PyObject *)PyEval_GetFrame();
    return PyObject_CallMethodObjArgs((PyObject *)self, s_wait, timeout ? timeout : minus_one,
                                      frame ? frame : Py_None, NULL);
}

static PyObject *lc_enter(LockCoreObject *self, PyObject *unused) { return lc_acquire(self, NULL, 0, NULL); }

static PyObject *real_release(LockCoreObject *self) {
    return self->release_fn ? self->release_fn(self->lock, NULL) : call0(self->lock, s_release);
}

static PyObject *lc_release(LockCoreObject *self, PyObject *unused) {
    HubObject *h = hub_of(self);
    if (h == NULL || !h->running || (self->reentrant && self->depth <= 0))
        return real_release(self);
    if (self->reentrant) {
        PyObject *v = self->owned_fn ? self->owned_fn(self->lock, NULL) : call0(self->lock, s_is_owned);
        if (v == NULL)
            return NULL;
        int yes = v == Py_True;
        Py_DECREF(v);
        if (!yes || --self->depth != 0) /* not the owner (the real release raises), or an inner release */
            return real_release(self);
    }
    int64_t t = sn_perf_ns();
    PyObject *r = real_release(self); /* a lock that is not held raises here: no event */
    if (r == NULL)
        return NULL;
    if (hub_released(h, self, t) < 0) {
        Py_DECREF(r);
        return NULL;
    }
    return r;
}

static PyObject *lc_exit(LockCoreObject *self, PyObject *const *args, Py_ssize_t nargs) {
    PyObject *r = lc_release(self, NULL);
    if (r == NULL)
        return NULL;
    Py_DECREF(r);
    Py_RETURN_NONE;
}

static int lc_init(LockCoreObject *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"lock", "name", "st", "hub", "reentrant", "owners", NULL};
    PyObject *lock, *name, *st, *hub = Py_None, *owners = NULL;
    int reentrant = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OUO|OpO!:LockCore", kwlist, &lock, &name, &st, &hub, &reentrant,
                                     &PyList_Type, &owners))
        return -1;
    owners = owners != NULL ? Py_NewRef(owners) : PyList_New(0);
    if (owners == NULL)
        return -1;
    Py_XSETREF(self->owners, owners);
    Py_CLEAR(self->taken);
    Py_XSETREF(self->lock, Py_NewRef(lock));
    Py_XSETREF(self->name, Py_NewRef(name));
    Py_XSETREF(self->st, Py_NewRef(st));
    Py_XSETREF(self->hub, Py_NewRef(hub));
    self->reentrant = reentrant;
    self->acquire_fn = (PyCFunctionWithKeywords)(void (*)(void))sn_c_method(Py_TYPE(lock), s_acquire, METH_VARARGS | METH_KEYWORDS);
    self->release_fn = sn_c_method(Py_TYPE(lock), s_release, METH_NOARGS);
    self->owned_fn = sn_c_method(Py_TYPE(lock), reentrant ? s_is_owned : s_locked, METH_NOARGS);
    self->depth = 0;
    return 0;
}

static int lc_traverse(LockCoreObject *self, visitproc visit, void *arg) {
    Py_VISIT(self->lock);
    Py_VISIT(self->name);
    Py_VISIT(self->st);
    Py_VISIT(self->hub);
    Py_VISIT(self->owners);
    return 0;
}

static int lc_clear(LockCoreObject *self) {
    for (int i = 0; i < NCACHE; i++) {
        Py_CLEAR(self->acq[i].ev);
        Py_CLEAR(self->rel[i].ev);
        self->acq[i].code = self->rel[i].code = NULL;
    }
    Py_CLEAR(self->owners);
    Py_CLEAR(self->taken);
    Py_CLEAR(self->lock);
    Py_CLEAR(self->name);
    Py_CLEAR(self->st);
    Py_CLEAR(self->hub);
    return 0;
}

/* Instances are of the Python subclasses, whose dealloc releases the type. */
static void lc_dealloc(LockCoreObject *self) {
    PyObject_GC_UnTrack(self);
    if (self->weakreflist != NULL)
        PyObject_ClearWeakRefs((PyObject *)self);
    lc_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* _rename(name) -> bool: take `name` if no event of this lock was recorded yet (its
 * event caches are empty: every C event goes through them; the Python paths note
 * theirs in LockState.used). */
static PyObject *lc_rename(LockCoreObject *self, PyObject *name) {
    if (!PyUnicode_Check(name)) {
        PyErr_SetString(PyExc_TypeError, "a lock's name must be a str");
        return NULL;
    }
    for (int i = 0; i < NCACHE; i++)
        if (self->acq[i].ev != NULL || self->rel[i].ev != NULL)
            Py_RETURN_FALSE;
    Py_XSETREF(self->name, Py_NewRef(name));
    Py_RETURN_TRUE;
}

/* _retitle(name): take `name` although events were recorded under the old one (the
 * program named the lock with trace_lock; the recording maps the old name to the new
 * one). The event caches hold the old name: emptied, so the next events carry the new. */
static PyObject *lc_retitle(LockCoreObject *self, PyObject *name) {
    if (!PyUnicode_Check(name)) {
        PyErr_SetString(PyExc_TypeError, "a lock's name must be a str");
        return NULL;
    }
    for (int i = 0; i < NCACHE; i++) {
        Py_CLEAR(self->acq[i].ev);
        Py_CLEAR(self->rel[i].ev);
        self->acq[i].code = self->rel[i].code = NULL;
    }
    Py_XSETREF(self->name, Py_NewRef(name));
    Py_RETURN_NONE;
}

static PyMethodDef lc_methods[] = {
    {"_rename", (PyCFunction)lc_rename, METH_O, "_rename(name): take name if nothing was recorded under the old one"},
    {"_retitle", (PyCFunction)lc_retitle, METH_O, "_retitle(name): take name, the event caches emptied"},
    {"acquire", (PyCFunction)(void (*)(void))lc_acquire, METH_FASTCALL | METH_KEYWORDS,
     "acquire(blocking=True, timeout=-1): the real lock's acquire, recorded."},
    {"release", (PyCFunction)lc_release, METH_NOARGS, "release(): the real lock's release, recorded."},
    {"__enter__", (PyCFunction)lc_enter, METH_NOARGS, "acquire()"},
    {"__exit__", (PyCFunction)(void (*)(void))lc_exit, METH_FASTCALL, "release()"},
    {NULL},
};

static PyMemberDef lc_members[] = {
    {"_lock", T_OBJECT_EX, offsetof(LockCoreObject, lock), READONLY, "the real lock"},
    {"name", T_OBJECT_EX, offsetof(LockCoreObject, name), READONLY, "the lock's name in the recording"},
    {"_st", T_OBJECT_EX, offsetof(LockCoreObject, st), READONLY, "the recording's LockState"},
    {"_hub", T_OBJECT_EX, offsetof(LockCoreObject, hub), READONLY, "its LockHub, or None"},
    {"_depth", T_PYSSIZET, offsetof(LockCoreObject, depth), 0, "reentrant: acquisitions by the owner"},
    {"_reentrant", T_BOOL, offsetof(LockCoreObject, reentrant), READONLY, "an RLock"},
    {"_owners", T_OBJECT_EX, offsetof(LockCoreObject, owners), READONLY, "LockState.owners[name]"},
    {"_taken", T_OBJECT, offsetof(LockCoreObject, taken), READONLY,
     "where its owner took it, when the C path did (else None)"},
    {NULL},
};

static PyTypeObject LockCoreType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "scope_nb.recorder._fasthooks.LockCore",
    .tp_doc = "LockCore(lock, name, st, hub=None, reentrant=False, owners=None): base of the traced Lock / RLock.",
    .tp_basicsize = sizeof(LockCoreObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)lc_init,
    .tp_traverse = (traverseproc)lc_traverse,
    .tp_clear = (inquiry)lc_clear,
    .tp_dealloc = (destructor)lc_dealloc,
    .tp_methods = lc_methods,
    .tp_members = lc_members,
    .tp_weaklistoffset = offsetof(LockCoreObject, weakreflist),
};

#define INTERN(var, text)                                     \
    do {                                                      \
        if ((var = PyUnicode_InternFromString(text)) == NULL) \
            return -1;                                        \
    } while (0)

int sn_add_lock_types(PyObject *module) {
    INTERN(s_acquire, "acquire");
    INTERN(s_release, "release");
    INTERN(s_locked, "locked");
    INTERN(s_is_owned, "_is_owned");
    INTERN(s_wait, "_wait");
    INTERN(s_blocking, "blocking");
    INTERN(s_timeout, "timeout");
    INTERN(s_took, "locks:took");
    INTERN(s_dropped, "locks:release");
    if ((minus_one = PyLong_FromLong(-1)) == NULL || (false_args = PyTuple_Pack(1, Py_False)) == NULL)
        return -1;
    if (PyType_Ready(&HubType) < 0 || PyType_Ready(&LockCoreType) < 0)
        return -1;
    if (PyModule_AddObjectRef(module, "LockHub", (PyObject *)&HubType) < 0 ||
        PyModule_AddObjectRef(module, "LockCore", (PyObject *)&LockCoreType) < 0)
        return -1;
    return 0;
}
