/* Columns and buffers: the Col type (ThreadBuffer.ts / .ks, growable int64 or uint32
 * columns that C appends to with plain stores) and a thread's event buffer as the lock
 * and queue hot paths append to it (SnBuffers in native.h). The Python side of the
 * same steps is session.push and Recorder.buffer / current_actor. */
#include "native.h"
/* ------------------------------------------------------------------------ */
/* Col                                                                        */

PyObject *sn_array_type;

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
    PyObject *out = PyObject_CallFunction(sn_array_type, "sO", c->wide ? "q" : "I", raw);
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

int sn_add_col_type(PyObject *module) {
    PyObject *arr = PyImport_ImportModule("array");
    if (arr == NULL)
        return -1;
    sn_array_type = PyObject_GetAttrString(arr, "array");
    Py_DECREF(arr);
    if (sn_array_type == NULL || PyType_Ready(&ColType) < 0)
        return -1;
    return PyModule_AddObjectRef(module, "Col", (PyObject *)&ColType);
}
