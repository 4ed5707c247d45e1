/* The module scope_nb.recorder._fasthooks: each C file adds its types; here are the
 * module functions, among them the frame self-test that decides whether the call hooks
 * may read frames through the private mirror of native.h (see buffer.fast_module). */
#include "native.h"

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

#ifdef SN_FRAME_MIRROR
/* Compares the mirror with the public API on the caller's frame; the first mismatch
 * as text, NULL (no error) when there is none. Only pointers read through the mirror
 * are compared, never followed, so a wrong layout cannot crash here. */
static PyObject *probe_mismatch(PyFrameObject *f) {
    sn_iframe *iframe = sn_current_frame();
#if PY_VERSION_HEX < 0x030C0000
    sn_frameobject *fo = (sn_frameobject *)f;
    if (fo->f_frame != iframe)
        return PyUnicode_FromString("the frame object's f_frame is not the running frame");
    PyObject *tr = PyObject_GetAttrString((PyObject *)f, "f_trace");
    if (tr == NULL)
        return NULL;
    Py_DECREF(tr);
    if ((tr == Py_None ? NULL : tr) != fo->f_trace)
        return PyUnicode_FromString("f_trace differs");
    PyObject *lines = PyObject_GetAttrString((PyObject *)f, "f_trace_lines");
    if (lines == NULL)
        return NULL;
    int want = PyObject_IsTrue(lines);
    Py_DECREF(lines);
    if (want < 0)
        return NULL;
    if (want != (fo->f_trace_lines != 0))
        return PyUnicode_FromString("f_trace_lines differs");
#endif
    PyCodeObject *code = PyFrame_GetCode(f);
    int same_code = iframe != NULL && sn_frame_code(iframe) == (PyObject *)code;
    PyObject *names = NULL, *locals = NULL, *out = NULL;
    if (!same_code) {
        out = PyUnicode_FromString("the running frame's code object differs");
        goto done;
    }
    names = PyCode_GetVarnames(code);
    locals = names ? PyFrame_GetLocals(f) : NULL;
    if (locals == NULL)
        goto done;
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(names); i++) {
        PyObject *want_v = PyObject_GetItem(locals, PyTuple_GET_ITEM(names, i));
        if (want_v == NULL) {
            if (!PyErr_ExceptionMatches(PyExc_KeyError))
                goto done;
            PyErr_Clear();
        } else {
            Py_DECREF(want_v); /* the frame keeps it: compared by address only */
        }
        if (sn_frame_local(iframe, i) != want_v) {
            out = PyUnicode_FromFormat("local %zd (%U) differs", i, PyTuple_GET_ITEM(names, i));
            goto done;
        }
    }
done:
    Py_DECREF(code);
    Py_XDECREF(names);
    Py_XDECREF(locals);
    return out;
}
#endif

static PyObject *frame_probe(PyObject *module, PyObject *unused) {
#ifdef SN_FRAME_MIRROR
    PyFrameObject *f = PyEval_GetFrame();
    if (f == NULL)
        return PyUnicode_FromString("no running Python frame");
    PyObject *why = probe_mismatch(f);
    if (why != NULL || PyErr_Occurred())
        return why;
    Py_RETURN_NONE;
#else
    return PyUnicode_FromString("no frame mirror for this Python");
#endif
}

static PyObject *use_frame_mirror(PyObject *module, PyObject *on) {
    int want = PyObject_IsTrue(on);
    if (want < 0)
        return NULL;
#ifdef SN_FRAME_MIRROR
    sn_frames_mirror = want;
#else
    sn_frames_mirror = 0;
#endif
    return PyBool_FromLong(sn_frames_mirror);
}

static PyMethodDef module_methods[] = {
    {"seal_list", (PyCFunction)seal_list, METH_O,
     "seal_list(vals): stop the garbage collector from walking a sealed chunk's event list."},
    {"frame_probe", (PyCFunction)frame_probe, METH_NOARGS,
     "frame_probe(): None when the frame mirror reads the calling Python function's frame as the public "
     "API does, else what differs."},
    {"use_frame_mirror", (PyCFunction)use_frame_mirror, METH_O,
     "use_frame_mirror(on): read call arguments through the frame mirror (after frame_probe() passed) or "
     "the public API; returns whether the mirror is in use."},
    {NULL},
};

static struct PyModuleDef fasthooks_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "scope_nb.recorder._fasthooks",
    .m_doc = "C versions of the recorder's hot paths and of the decode and pairing loops (optional; see "
             "backends/, locks, messages, decode.py, frames.py).",
    .m_size = -1,
    .m_methods = module_methods,
};

PyMODINIT_FUNC PyInit__fasthooks(void) {
    PyObject *m = PyModule_Create(&fasthooks_module);
    if (m == NULL)
        return NULL;
#ifdef SN_FRAME_MIRROR
    PyObject *mirror = PyUnicode_FromString(SN_FRAME_MIRROR);
#else
    PyObject *mirror = Py_NewRef(Py_None);
#endif
    int added = mirror != NULL && PyModule_AddObjectRef(m, "FRAME_MIRROR", mirror) == 0;
    Py_XDECREF(mirror);
    if (!added || sn_add_col_type(m) < 0 ||
        sn_add_hooks_type(m) < 0 || sn_add_decoder_type(m) < 0 || sn_add_pairing(m) < 0 || sn_add_call_stats(m) < 0 ||
        sn_add_lock_types(m) < 0 ||
        sn_add_queue_types(m) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
