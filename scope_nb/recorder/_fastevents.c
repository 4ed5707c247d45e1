/* A thread's event buffer from C (see SnBuffers in _fasthooks.h): what the lock and
 * queue hot paths share. The Python side of the same steps is session.push and
 * Recorder.buffer / current_actor. */
#include "_fasthooks.h"

static PyObject *s_b, *s_seal;

int sn_buffers_init(SnBuffers *s, PyObject *local, PyObject *new_buffer, PyObject *buffer_type,
                    PyObject *current_actor, Py_ssize_t chunk) {
    if (s_b == NULL && ((s_b = PyUnicode_InternFromString("b")) == NULL ||
                        (s_seal = PyUnicode_InternFromString("seal")) == NULL))
        return -1;
    if (!PyType_Check(buffer_type)) {
        PyErr_SetString(PyExc_TypeError, "buffer_type must be a type");
        return -1;
    }
    s->local = Py_NewRef(local);
    s->new_buffer = Py_NewRef(new_buffer);
    s->buffer_type = Py_NewRef(buffer_type);
    s->current_actor = Py_NewRef(current_actor);
    s->bufs = PyList_New(0);
    s->chunk = chunk;
    memset(s->seen, 0, sizeof(s->seen));
    s->next = 0;
    if (s->bufs == NULL || sn_member_offset(buffer_type, "ts", &s->off_ts) < 0 ||
        sn_member_offset(buffer_type, "ks", &s->off_ks) < 0 ||
        sn_member_offset(buffer_type, "vals", &s->off_vals) < 0 ||
        sn_member_offset(buffer_type, "loopy", &s->off_loopy) < 0 ||
        sn_member_offset(buffer_type, "actor", &s->off_actor) < 0 ||
        sn_member_offset(buffer_type, "on", &s->off_on) < 0 ||
        sn_member_offset(buffer_type, "ident", &s->off_ident) < 0 ||
        sn_member_offset(buffer_type, "task", &s->off_task) < 0)
        return -1;
    return 0;
}

int sn_buffers_traverse(SnBuffers *s, visitproc visit, void *arg) {
    Py_VISIT(s->local);
    Py_VISIT(s->new_buffer);
    Py_VISIT(s->buffer_type);
    Py_VISIT(s->current_actor);
    Py_VISIT(s->bufs);
    return 0;
}

void sn_buffers_clear(SnBuffers *s) {
    memset(s->seen, 0, sizeof(s->seen)); /* its buffers are gone with `bufs` */
    Py_CLEAR(s->local);
    Py_CLEAR(s->new_buffer);
    Py_CLEAR(s->buffer_type);
    Py_CLEAR(s->current_actor);
    Py_CLEAR(s->bufs);
}

PyObject *sn_buffer(SnBuffers *s) {
    PyThreadState *ts = PyThreadState_GET();
    uint64_t id = PyThreadState_GetID(ts);
    for (int i = 0; i < SN_SEEN; i++)
        if (s->seen[i].ts == ts && s->seen[i].id == id && s->seen[i].b != NULL)
            return s->seen[i].b;
    if (s->bufs == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "buffers cleared");
        return NULL;
    }
    PyObject *b = PyObject_GetAttr(s->local, s_b);
    if (b == NULL) {
        if (!PyErr_ExceptionMatches(PyExc_AttributeError))
            return NULL;
        PyErr_Clear();
        b = PyObject_CallNoArgs(s->new_buffer);
        if (b == NULL)
            return NULL;
    }
    if (Py_TYPE(b) != (PyTypeObject *)s->buffer_type) {
        PyErr_Format(PyExc_TypeError, "thread buffer of unexpected type %.200s", Py_TYPE(b)->tp_name);
        Py_DECREF(b);
        return NULL;
    }
    int err = PyList_Append(s->bufs, b);
    Py_DECREF(b);
    if (err < 0)
        return NULL;
    unsigned i = s->next++ % SN_SEEN;
    s->seen[i].ts = ts;
    s->seen[i].id = id;
    s->seen[i].b = b;
    return b;
}

PyObject *sn_actor(SnBuffers *s, PyObject *b) {
    PyObject *loopy = SN_SLOT(b, s->off_loopy);
    if (loopy == NULL || loopy == Py_False) {
        PyObject *actor = SN_SLOT(b, s->off_actor);
        if (actor == NULL)
            PyErr_SetString(PyExc_AttributeError, "thread buffer has no actor");
        return Py_XNewRef(actor);
    }
    return PyObject_CallOneArg(s->current_actor, b);
}

int sn_buffer_on(SnBuffers *s, PyObject *b) {
    PyObject *on = SN_SLOT(b, s->off_on);
    return on == NULL || on == Py_True ? 1 : on == Py_False ? 0 : PyObject_IsTrue(on);
}

int sn_push(SnBuffers *s, PyObject *b, uint32_t k, PyObject *ev, int64_t t) {
    PyObject *vals = SN_SLOT(b, s->off_vals), *ks = SN_SLOT(b, s->off_ks), *ts = SN_SLOT(b, s->off_ts);
    if (vals == NULL || !PyList_CheckExact(vals) || ks == NULL || !Py_IS_TYPE(ks, &ColType) || ts == NULL ||
        !Py_IS_TYPE(ts, &ColType)) {
        PyErr_SetString(PyExc_TypeError, "thread buffer columns are not (Col, Col, list)");
        return -1;
    }
    if (PyList_Append(vals, ev) < 0 || col_push_I((ColObject *)ks, k) < 0 || col_push_q((ColObject *)ts, t) < 0)
        return -1;
    if (((ColObject *)ts)->len >= s->chunk) {
        PyObject *r = PyObject_CallMethodNoArgs(b, s_seal);
        if (r == NULL)
            return -1;
        Py_DECREF(r);
    }
    return 0;
}
