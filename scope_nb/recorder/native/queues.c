/* The `_put` / `_get` of the FIFO queues (queue.Queue, asyncio.Queue) while recording,
 * in C (see messages.py, whose Python closures are the reference and handle every
 * unusual call).
 *
 * These run under the queue's mutex: every microsecond spent here is one the other
 * producers and consumers wait. A QueueHook is a method descriptor (it binds like a
 * function) that runs the original method (the stock ones' deque operation it does
 * itself), then pairs the message FIFO-wise (the box's deque holds each send's
 * MessageEvent until its receive) and appends the send / receive event.
 */
#include "native.h"

typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    SnBuffers bufs;
    PyObject *orig, *py, *boxes, *box_of, *ids, *own, *detail, *fault, *where, *plain_qsize;
    PyObject *last_box; /* the box last used: a queue used again needs no lookup */
    uint32_t k; /* the event code; 0: the tracing level leaves the event out */
    char get, threaded, plain;
    Py_ssize_t off_name, off_fifo, off_untracked, off_ref, off_outer;
} QueueHookObject;

static PyTypeObject QueueHookType;
static PyObject *s_append, *s_popleft, *s_qsize, *s_queue, *s_deque, *s_shutdown, *s_is_shutdown,
    *s_async_is_shutdown;
/* collections.deque and its append / popleft, called without a lookup */
static PyTypeObject *deque_type;
static PyCFunction deque_append, deque_popleft;

#define NO_DEPTH INT32_MIN /* a MessageEvent's depth when unknown (None) */

/* The message as its event keeps it (messages._detail): numbers, None and small tuples
 * of atomics (no long text) by reference, anything else formatted now by Python. New
 * reference. */
static PyObject *keep(QueueHookObject *q, PyObject *b, PyObject *item) {
    PyTypeObject *t = Py_TYPE(item);
    if (t == &PyLong_Type || t == &PyFloat_Type || item == Py_None || t == &PyBool_Type || t == &PyComplex_Type)
        return Py_NewRef(item);
    if (t == &PyTuple_Type && PyTuple_GET_SIZE(item) <= 4) {
        Py_ssize_t i, n = PyTuple_GET_SIZE(item);
        for (i = 0; i < n && sn_kept_as_is(PyTuple_GET_ITEM(item, i)); i++)
            ;
        if (i == n) {
            /* what the collector's first pass does to such a tuple: kept by the
             * recording, it would otherwise be traversed by every collection */
            if (PyObject_GC_IsTracked(item))
                PyObject_GC_UnTrack(item);
            return Py_NewRef(item);
        }
    }
    PyObject *args[2] = {b, item};
    return PyObject_Vectorcall(q->detail, args, 2, NULL);
}

/* The queue's depth after the operation: q._qsize() (thread queues), len(q._queue)
 * (asyncio); `items` is the container the operation used (or NULL): a thread queue
 * whose _qsize is queue.Queue's own has len(q.queue) items. A custom _qsize's result
 * is taken as messages._depth takes it: an integer (operator.index), else unknown
 * (NO_DEPTH). 0 with *n set; 1 with *odd set (new reference) for an int64 a
 * MessageEvent cannot hold; -1 on error. */
static int depth(QueueHookObject *q, PyObject *queue, PyObject *items, int64_t *n, PyObject **odd) {
    if (q->threaded && _PyType_Lookup(Py_TYPE(queue), s_qsize) != q->plain_qsize) {
        PyObject *r = PyObject_VectorcallMethod(s_qsize, &queue, 1 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
        if (r == NULL)
            return -1;
        PyObject *i = PyNumber_Index(r);
        Py_DECREF(r);
        int overflow = 0;
        long long v = i == NULL ? 0 : PyLong_AsLongLongAndOverflow(i, &overflow);
        Py_XDECREF(i);
        if (i == NULL || overflow || (v == -1 && PyErr_Occurred())) {
            PyErr_Clear();
            *n = NO_DEPTH;
            return 0;
        }
        *n = v;
        if (v > NO_DEPTH && v <= INT32_MAX)
            return 0;
        return (*odd = PyLong_FromLongLong(v)) == NULL ? -1 : 1;
    }
    PyObject *d = items != NULL ? Py_NewRef(items) : PyObject_GetAttr(queue, q->threaded ? s_deque : s_queue);
    if (d == NULL)
        return -1;
    *n = PyObject_Size(d);
    Py_DECREF(d);
    return *n < 0 ? -1 : 0;
}

/* The referent of weak reference `ref` (borrowed), or NULL. */
static PyObject *referent(PyObject *ref) {
    if (ref == NULL || !PyWeakref_Check(ref))
        return NULL;
#if PY_VERSION_HEX >= 0x030D0000
    PyObject *obj = NULL;
    if (PyWeakref_GetRef(ref, &obj) < 0) {
        PyErr_Clear();
        return NULL;
    }
    Py_XDECREF(obj); /* the box's queue is the caller's argument: alive */
    return obj;
#else
    return PyWeakref_GET_OBJECT(ref);
#endif
}

/* The box of this queue (new reference), made by Python on first sight. */
static PyObject *box_for(QueueHookObject *q, PyObject *queue) {
    if (q->last_box != NULL && referent(SN_SLOT(q->last_box, q->off_ref)) == queue)
        return Py_NewRef(q->last_box);
    PyObject *key = PyLong_FromVoidPtr(queue);
    if (key == NULL)
        return NULL;
    PyObject *box = PyDict_GetItemWithError(q->boxes, key);
    Py_DECREF(key);
    if (box != NULL)
        Py_INCREF(box);
    else if (PyErr_Occurred() || (box = PyObject_CallOneArg(q->box_of, queue)) == NULL)
        return NULL;
    Py_XSETREF(q->last_box, Py_NewRef(box));
    return box;
}

/* ---- MessageEvent: the event of one message ---------------------------------
 * A read-only sequence (actor, queue name, message, msg id, waited, depth), the short
 * form decode.rich_values reads, and for a send the time it was sent: the FIFO box
 * keeps the send's event itself until the receive pairs with it. The numbers are
 * kept as C integers (NONE: None) and become ints when read; a send's time and a
 * receive's wait share one field. 64 bytes, not tracked by the garbage collector:
 * strings, numbers and small tuples of those cannot form a cycle, and the hottest of
 * the emitted events then costs one small allocation. */
#define NFIELDS 6
#define NONE INT64_MIN
typedef struct {
    PyObject_HEAD
    PyObject *actor, *queue, *message;
    int64_t msg_id;
    int64_t when; /* a send: the time it was sent; a receive: how long it waited */
    int32_t depth;
    int32_t send;
} EventObject;

static PyTypeObject EventType;

static EventObject *event_new(PyObject *actor, PyObject *queue, PyObject *message, int64_t depth, int64_t msg_id,
                              int64_t when, int send) {
    EventObject *ev = PyObject_New(EventObject, &EventType);
    if (ev == NULL)
        return NULL;
    ev->actor = Py_NewRef(actor);
    ev->queue = Py_NewRef(queue);
    ev->message = Py_NewRef(message);
    ev->msg_id = msg_id;
    ev->when = when;
    ev->depth = (int32_t)depth;
    ev->send = send;
    return ev;
}

static void event_dealloc(EventObject *ev) {
    Py_DECREF(ev->actor);
    Py_DECREF(ev->queue);
    Py_DECREF(ev->message);
    PyObject_Free(ev);
}

static PyObject *int_or_none(long long v) { return v == NONE ? Py_NewRef(Py_None) : PyLong_FromLongLong(v); }

static Py_ssize_t event_len(PyObject *ev) { return NFIELDS; }

static PyObject *event_item(EventObject *ev, Py_ssize_t i) {
    switch (i) {
    case 0:
        return Py_NewRef(ev->actor);
    case 1:
        return Py_NewRef(ev->queue);
    case 2:
        return Py_NewRef(ev->message);
    case 3:
        return int_or_none(ev->msg_id);
    case 4:
        return int_or_none(ev->send ? NONE : ev->when);
    case 5:
        return ev->depth == NO_DEPTH ? Py_NewRef(Py_None) : PyLong_FromLong(ev->depth);
    }
    PyErr_SetString(PyExc_IndexError, "MessageEvent index out of range");
    return NULL;
}

static PyObject *event_repr(EventObject *ev) {
    PyObject *t = PySequence_Tuple((PyObject *)ev);
    if (t == NULL)
        return NULL;
    PyObject *r = PyUnicode_FromFormat("MessageEvent%R", t);
    Py_DECREF(t);
    return r;
}

static PyObject *event_msg_id(EventObject *ev, void *closure) { return int_or_none(ev->msg_id); }

static PyObject *event_sent(EventObject *ev, void *closure) { return int_or_none(ev->send ? ev->when : NONE); }

static PySequenceMethods event_as_sequence = {
    .sq_length = event_len,
    .sq_item = (ssizeargfunc)event_item,
};

static PyGetSetDef event_getset[] = {
    {"msg_id", (getter)event_msg_id, NULL, "the message id (None: none)", NULL},
    {"sent", (getter)event_sent, NULL, "a send: when (perf ns); None for a receive", NULL},
    {NULL},
};

static PyTypeObject EventType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "scope_nb.recorder._fasthooks.MessageEvent",
    .tp_doc = "The event of one queue message: (actor, queue, message, msg id, waited, depth).",
    .tp_basicsize = sizeof(EventObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_dealloc = (destructor)event_dealloc,
    .tp_repr = (reprfunc)event_repr,
    .tp_as_sequence = &event_as_sequence,
    .tp_getset = event_getset,
};

int sn_message_view(PyObject *v, SnMessage *m) {
    if (!Py_IS_TYPE(v, &EventType))
        return 0;
    EventObject *ev = (EventObject *)v;
    m->actor = ev->actor;
    m->queue = ev->queue;
    m->message = ev->message;
    m->msg_id = ev->msg_id;
    m->waited = ev->send ? NONE : ev->when;
    m->depth = ev->depth == NO_DEPTH ? NONE : ev->depth;
    return 1;
}

/* An int as int64 (a message id, a time); -1 with an exception when it is not one. */
static int as_int64(PyObject *v, int64_t *out) {
#if LONG_MAX >= INT64_MAX
    *out = PyLong_AsLong(v); /* PyLong_AsLongLong is slower */
#else
    *out = PyLong_AsLongLong(v);
#endif
    return *out == -1 && PyErr_Occurred() ? -1 : 0;
}

/* This thread's buffer when its events are recorded (1), or 0 for one of the
 * recorder's own threads; -1 on error. */
static int recorded(QueueHookObject *q, PyObject **b) {
    if ((*b = sn_buffer(&q->bufs)) == NULL)
        return -1;
    int on = sn_buffer_on(&q->bufs, *b);
    if (on != 0)
        return on;
    PyObject *ident = SN_SLOT(*b, q->bufs.off_ident);
    int own = ident == NULL ? 0 : PySet_Contains(q->own, ident);
    return own < 0 ? -1 : !own;
}

/* The event of one message (a send when `send`; `when`: its time, or a receive's
 * wait): its fields when the buffer `b` records it, else only its msg id (a send's
 * entry in the FIFO box). A MessageEvent, or the Python path's 6-tuple when a custom
 * _qsize gives what a MessageEvent cannot hold. */
static PyObject *message_event(QueueHookObject *q, PyObject *b, PyObject *queue, PyObject *items, PyObject *box,
                               PyObject *item, int64_t mid, int64_t when, int send) {
    if (b == NULL)
        return (PyObject *)event_new(Py_None, Py_None, Py_None, NO_DEPTH, mid, when, send);
    PyObject *actor = sn_actor(&q->bufs, b), *detail = NULL, *odd = NULL, *ev = NULL;
    int64_t n = 0;
    int kind = -1;
    if (actor != NULL && (detail = keep(q, b, item)) != NULL && (kind = depth(q, queue, items, &n, &odd)) == 0)
        ev = (PyObject *)event_new(actor, SN_SLOT(box, q->off_name), detail, n, mid, when, send);
    else if (kind == 1) {
        PyObject *id = int_or_none(mid), *waited = int_or_none(send ? NONE : when);
        if (id != NULL && waited != NULL)
            ev = PyTuple_Pack(NFIELDS, actor, SN_SLOT(box, q->off_name), detail, id, waited, odd);
        Py_XDECREF(id);
        Py_XDECREF(waited);
    }
    Py_XDECREF(actor);
    Py_XDECREF(detail);
    Py_XDECREF(odd);
    return ev;
}

/* deque.append(x) / deque.popleft() on a box's own deque. */
static PyObject *fifo_call(PyObject *fifo, PyObject *x) {
    if (Py_IS_TYPE(fifo, deque_type))
        return x != NULL ? deque_append(fifo, x) : deque_popleft(fifo, NULL);
    return x != NULL ? PyObject_CallMethodOneArg(fifo, s_append, x) : PyObject_CallMethodNoArgs(fifo, s_popleft);
}

static int after_put(QueueHookObject *q, PyObject *queue, PyObject *items, PyObject *item) {
    PyObject *box = box_for(q, queue), *id = NULL, *b = NULL, *ev = NULL;
    int rc = -1, rec = 0;
    int64_t mid;
    if (box != NULL && SN_SLOT(box, q->off_outer) == Py_True) { /* a program's override called this one */
        rc = 0;
        goto done;
    }
    if (box == NULL || (id = PyIter_Next(q->ids)) == NULL || as_int64(id, &mid) < 0)
        goto done;
    int64_t t = sn_perf_ns();
    PyObject *fifo = SN_SLOT(box, q->off_fifo);
    if (fifo == NULL) {
        PyErr_SetString(PyExc_AttributeError, "queue box slots unset");
        goto done;
    }
    if (q->k && (rec = recorded(q, &b)) < 0)
        goto done;
    if ((ev = message_event(q, rec ? b : NULL, queue, items, box, item, mid, t, 1)) == NULL)
        goto done;
    /* the box holds the event, or (msg id, time) as a Python send leaves */
    PyObject *entry = Py_IS_TYPE(ev, &EventType) ? Py_NewRef(ev) : Py_BuildValue("(LL)", (long long)mid, (long long)t);
    PyObject *r = entry == NULL ? NULL : fifo_call(fifo, entry);
    Py_XDECREF(entry);
    if (r == NULL)
        goto done;
    Py_DECREF(r);
    rc = rec ? sn_push(&q->bufs, b, q->k, ev, t) : 0;
done:
    if (rc < 0 && !PyErr_Occurred())
        PyErr_SetString(PyExc_StopIteration, "message ids exhausted");
    Py_XDECREF(box);
    Py_XDECREF(id);
    Py_XDECREF(ev);
    return rc;
}

/* The msg id and send time of a FIFO box's entry: a C send's event, or the
 * (msg id, time) pair a Python send leaves. 0, or -1 with an exception. */
static int entry_of(PyObject *entry, int64_t *mid, int64_t *sent) {
    if (Py_IS_TYPE(entry, &EventType)) {
        *mid = ((EventObject *)entry)->msg_id;
        *sent = ((EventObject *)entry)->when;
        return 0;
    }
    if (!PyTuple_CheckExact(entry) || PyTuple_GET_SIZE(entry) != 2) {
        PyErr_SetString(PyExc_TypeError, "queue box entry is not (msg id, time)");
        return -1;
    }
    return as_int64(PyTuple_GET_ITEM(entry, 0), mid) < 0 || as_int64(PyTuple_GET_ITEM(entry, 1), sent) < 0 ? -1 : 0;
}

/* shutdown(immediate=True) (3.13) drains the queue through _get: items discarded,
 * not received. 1: this _get is that drain. */
static int draining(QueueHookObject *q, PyObject *queue) {
#if PY_VERSION_HEX >= 0x030D0000
    PyObject *flag = PyObject_GetAttr(queue, q->threaded ? s_is_shutdown : s_async_is_shutdown);
    if (flag == NULL) {
        PyErr_Clear();
        return 0;
    }
    int down = flag == Py_True;
    Py_DECREF(flag);
    if (!down)
        return 0;
    PyFrameObject *f = PyEval_GetFrame();
    PyCodeObject *code = f == NULL ? NULL : PyFrame_GetCode(f);
    int drained = code != NULL && PyUnicode_Compare(code->co_name, s_shutdown) == 0;
    Py_XDECREF(code);
    return drained;
#else
    return 0;
#endif
}

static int after_get(QueueHookObject *q, PyObject *queue, PyObject *items, PyObject *item) {
    int64_t t = sn_perf_ns();
    PyObject *box = box_for(q, queue), *b = NULL;
    int64_t mid = NONE, waited = NONE;
    int rc = -1;
    if (box == NULL)
        goto done;
    if (SN_SLOT(box, q->off_outer) == Py_True) { /* a program's override called this one */
        rc = 0;
        goto done;
    }
    PyObject *untracked = SN_SLOT(box, q->off_untracked), *fifo = SN_SLOT(box, q->off_fifo);
    if (untracked == NULL || fifo == NULL) {
        PyErr_SetString(PyExc_AttributeError, "queue box slots unset");
        goto done;
    }
    Py_ssize_t before = PyLong_AsSsize_t(untracked);
    if (before == -1 && PyErr_Occurred())
        goto done;
    if (before > 0) { /* an item put before the queue was first seen: no message id */
        PyObject *n = PyLong_FromSsize_t(before - 1);
        if (n == NULL)
            goto done;
        Py_SETREF(SN_SLOT(box, q->off_untracked), n);
    } else {
        Py_ssize_t n = PyObject_Size(fifo);
        if (n < 0)
            goto done;
        if (n > 0) {
            PyObject *entry = fifo_call(fifo, NULL);
            if (entry == NULL)
                goto done;
            int64_t sent;
            int err = entry_of(entry, &mid, &sent);
            Py_DECREF(entry);
            if (err < 0)
                goto done;
            waited = t - sent;
        }
    }
    rc = 0;
    if (q->k && !draining(q, queue)) {
        int rec = recorded(q, &b);
        PyObject *ev = NULL;
        if (rec < 0 || (rec && (ev = message_event(q, b, queue, items, box, item, mid, waited, 0)) == NULL))
            rc = -1;
        else if (rec)
            rc = sn_push(&q->bufs, b, q->k, ev, t);
        Py_XDECREF(ev);
    }
done:
    Py_XDECREF(box);
    return rc;
}

/* What the original _put / _get does: `self.queue.append(item)` / `self.queue.popleft()`
 * (`self._queue` for asyncio), done here when the hook was told the original is the
 * stock method (`plain`); *items is set to the container. Else the original is called. */
static PyObject *body(QueueHookObject *q, PyObject *const *args, Py_ssize_t nargs, PyObject **items) {
    if (!q->plain)
        return PyObject_Vectorcall(q->orig, args, nargs, NULL);
    PyObject *d = PyObject_GetAttr(args[0], q->threaded ? s_deque : s_queue);
    if (d == NULL)
        return NULL;
    PyObject *r;
    if (Py_IS_TYPE(d, deque_type))
        r = q->get ? deque_popleft(d, NULL) : deque_append(d, args[1]);
    else
        r = q->get ? PyObject_CallMethodNoArgs(d, s_popleft) : PyObject_CallMethodOneArg(d, s_append, args[1]);
    if (r == NULL) {
        Py_DECREF(d);
        return NULL;
    }
    *items = d;
    if (q->get)
        return r;
    Py_DECREF(r);
    Py_RETURN_NONE;
}

static PyObject *qh_vectorcall(QueueHookObject *q, PyObject *const *args, size_t nargsf, PyObject *kwnames) {
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    if (kwnames != NULL || nargs != (q->get ? 1 : 2)) /* unusual: the Python closure */
        return PyObject_Vectorcall(q->py, args, nargsf, kwnames);
    PyObject *items = NULL, *r = body(q, args, nargs, &items);
    if (r == NULL)
        return NULL;
    int rc = q->get ? after_get(q, args[0], items, r) : after_put(q, args[0], items, args[1]);
    Py_XDECREF(items);
    if (rc < 0) {
        PyObject *ok = sn_report_fault(q->fault, q->where);
        if (ok == NULL) {
            Py_DECREF(r);
            return NULL;
        }
        Py_DECREF(ok);
    }
    return r;
}

static PyObject *qh_descr_get(PyObject *self, PyObject *obj, PyObject *type) {
    if (obj == NULL || obj == Py_None)
        return Py_NewRef(self);
    return PyMethod_New(self, obj);
}

static PyObject *qh_new(PyTypeObject *type, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"orig", "py", "get", "threaded", "k", "boxes", "box_of", "box_type", "ids", "own",
                             "detail", "fault", "local", "new_buffer", "buffer_type", "current_actor", "chunk",
                             "plain_qsize", "plain", NULL};
    PyObject *orig, *py, *boxes, *box_of, *box_type, *ids, *own, *detail, *faultf, *local, *new_buffer,
        *buffer_type, *current_actor, *plain_qsize;
    int get, threaded, plain;
    unsigned int k;
    Py_ssize_t chunk;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "$OOppIO!OOOO!OOOOOOnOp:QueueHook", kwlist, &orig, &py, &get,
                                     &threaded, &k, &PyDict_Type, &boxes, &box_of, &box_type, &ids, &PySet_Type,
                                     &own, &detail, &faultf, &local, &new_buffer, &buffer_type, &current_actor,
                                     &chunk, &plain_qsize, &plain))
        return NULL;
    QueueHookObject *q = (QueueHookObject *)type->tp_alloc(type, 0);
    if (q == NULL)
        return NULL;
    q->vectorcall = (vectorcallfunc)qh_vectorcall;
    q->orig = Py_NewRef(orig);
    q->py = Py_NewRef(py);
    q->boxes = Py_NewRef(boxes);
    q->box_of = Py_NewRef(box_of);
    q->ids = Py_NewRef(ids);
    q->own = Py_NewRef(own);
    q->detail = Py_NewRef(detail);
    q->fault = Py_NewRef(faultf);
    q->plain_qsize = Py_NewRef(plain_qsize);
    q->where = PyUnicode_FromString(get ? "queue.get" : "queue.put");
    q->k = k;
    q->get = (char)get;
    q->threaded = (char)threaded;
    q->plain = (char)plain;
    if (q->where == NULL || sn_buffers_init(&q->bufs, local, new_buffer, buffer_type, current_actor, chunk) < 0 ||
        sn_member_offset(box_type, "name", &q->off_name) < 0 || sn_member_offset(box_type, "fifo", &q->off_fifo) < 0 ||
        sn_member_offset(box_type, "untracked", &q->off_untracked) < 0 ||
        sn_member_offset(box_type, "ref", &q->off_ref) < 0 || sn_member_offset(box_type, "outer", &q->off_outer) < 0) {
        Py_DECREF(q);
        return NULL;
    }
    return (PyObject *)q;
}

static int qh_traverse(QueueHookObject *q, visitproc visit, void *arg) {
    if (sn_buffers_traverse(&q->bufs, visit, arg) < 0)
        return -1;
    Py_VISIT(q->orig);
    Py_VISIT(q->py);
    Py_VISIT(q->boxes);
    Py_VISIT(q->box_of);
    Py_VISIT(q->ids);
    Py_VISIT(q->own);
    Py_VISIT(q->detail);
    Py_VISIT(q->fault);
    Py_VISIT(q->plain_qsize);
    Py_VISIT(q->last_box);
    return 0;
}

static int qh_clear(QueueHookObject *q) {
    sn_buffers_clear(&q->bufs);
    Py_CLEAR(q->orig);
    Py_CLEAR(q->py);
    Py_CLEAR(q->boxes);
    Py_CLEAR(q->box_of);
    Py_CLEAR(q->ids);
    Py_CLEAR(q->own);
    Py_CLEAR(q->detail);
    Py_CLEAR(q->fault);
    Py_CLEAR(q->where);
    Py_CLEAR(q->plain_qsize);
    Py_CLEAR(q->last_box);
    return 0;
}

static void qh_dealloc(QueueHookObject *q) {
    PyObject_GC_UnTrack(q);
    qh_clear(q);
    Py_TYPE(q)->tp_free((PyObject *)q);
}

static PyObject *qh_wrapped(QueueHookObject *q, void *closure) { return Py_NewRef(q->orig); }

static PyGetSetDef qh_getset[] = {
    {"__wrapped__", (getter)qh_wrapped, NULL, "the original method", NULL},
    {NULL},
};

static PyTypeObject QueueHookType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "scope_nb.recorder._fasthooks.QueueHook",
    .tp_doc = "A FIFO queue's _put or _get while recording: the original, then the message's event.",
    .tp_basicsize = sizeof(QueueHookObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL | Py_TPFLAGS_METHOD_DESCRIPTOR,
    .tp_vectorcall_offset = offsetof(QueueHookObject, vectorcall),
    .tp_call = PyVectorcall_Call,
    .tp_descr_get = qh_descr_get,
    .tp_new = qh_new,
    .tp_traverse = (traverseproc)qh_traverse,
    .tp_clear = (inquiry)qh_clear,
    .tp_dealloc = (destructor)qh_dealloc,
    .tp_getset = qh_getset,
};

#define INTERN(var, text)                                     \
    do {                                                      \
        if ((var = PyUnicode_InternFromString(text)) == NULL) \
            return -1;                                        \
    } while (0)

int sn_add_queue_types(PyObject *module) {
    INTERN(s_append, "append");
    INTERN(s_popleft, "popleft");
    INTERN(s_qsize, "_qsize");
    INTERN(s_queue, "_queue");
    INTERN(s_deque, "queue");
    INTERN(s_shutdown, "shutdown");
    INTERN(s_is_shutdown, "is_shutdown");
    INTERN(s_async_is_shutdown, "_is_shutdown");
    PyObject *collections = PyImport_ImportModule("collections");
    if (collections == NULL)
        return -1;
    deque_type = (PyTypeObject *)PyObject_GetAttrString(collections, "deque");
    Py_DECREF(collections);
    if (deque_type == NULL || !PyType_Check(deque_type)) {
        PyErr_SetString(PyExc_ImportError, "collections.deque is not a type");
        return -1;
    }
    deque_append = sn_c_method(deque_type, s_append, METH_O);
    deque_popleft = sn_c_method(deque_type, s_popleft, METH_NOARGS);
    if (deque_append == NULL || deque_popleft == NULL) {
        PyErr_SetString(PyExc_ImportError, "collections.deque.append / popleft are not plain C methods");
        return -1;
    }
    if (PyType_Ready(&QueueHookType) < 0 || PyType_Ready(&EventType) < 0)
        return -1;
    if (PyModule_AddObjectRef(module, "MessageEvent", (PyObject *)&EventType) < 0)
        return -1;
    return PyModule_AddObjectRef(module, "QueueHook", (PyObject *)&QueueHookType);
}
