/* The decoder of scope_nb.decode (read side): the per-event loop in C. */
#include "native.h"

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
/* A message is one object for its send and its receive, which the decoder meets a few
 * thousand emitted events apart (the queue's depth, the threads' chunks): a tuple's text
 * is kept that long, by identity (a tuple kept by reference holds atomics). */
#define SN_TEXT_CACHE 32768
typedef struct {
    PyObject *obj, *text;
} TextSeen;
#define SN_RICH_FIELDS 9 /* decode.RICH_FIELDS */
typedef struct {
    PyObject *ev, *actor, *fields, *detail;
} RichSeen;

typedef struct {
    PyObject_HEAD
    PyObject *names, *gens, *shown, *locations, *fmt, *formatted, *show, *args_text, *rich_values, *rich_detail;
    PyObject *detail, *fid, *actor, *rich_rows, *rich_actor, *rich_cols;
    PyObject **prefix; /* per site: a tuple of "name=" strings, made on first use */
    Py_ssize_t nsites, text_off, max_items, max_len;
    int texts; /* 0: only the sparse columns are filled, no detail text is made */
    uint32_t c_call, c_return, c_exception, c_suspend, c_resume, c_switch, kind_bits, kind_mask;
    RichSeen seen[SN_RICH_CACHE];
    TextSeen *texts_seen; /* SN_TEXT_CACHE of them, or NULL without texts */
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
static PyObject *message_text_of(DecoderObject *d, PyObject *x) {
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

/* message_text_of(x), a tuple's from the cache when it was just made */
static PyObject *message_text(DecoderObject *d, PyObject *x) {
    if (!Py_IS_TYPE(x, &PyTuple_Type) || d->texts_seen == NULL)
        return message_text_of(d, x);
    TextSeen *e = &d->texts_seen[((uintptr_t)x >> 4) % SN_TEXT_CACHE];
    if (e->obj == x)
        return Py_NewRef(e->text);
    PyObject *r = message_text_of(d, x);
    if (r != NULL) {
        Py_XSETREF(e->obj, Py_NewRef(x));
        Py_XSETREF(e->text, Py_NewRef(r));
    }
    return r;
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
        if (rc == 0 && (detail = d->texts ? message_text(d, m.message) : Py_NewRef(Py_None)) == NULL)
            rc = -1;
    } else {
        RichSeen *seen = &d->seen[((uintptr_t)v >> 4) % SN_RICH_CACHE];
        if (seen->ev != v) {
            PyObject *a = PySequence_GetItem(v, 0), *f = NULL, *x = NULL, *text = NULL;
            if (a != NULL && (f = call2(d->rich_values, v, d->locations)) != NULL && (x = PySequence_GetItem(v, 2)) != NULL)
                text = d->texts ? message_text(d, x) : Py_NewRef(Py_None);
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
        rc = PyList_Append(d->rich_actor, actor);
done:
    Py_XDECREF(key);
    Py_XDECREF(actor);
    if (rc < 0)
        Py_CLEAR(detail);
    return detail;
}

/* A generator's call holds (frame id, value): fid[row] = its frame id, *pair the tuple
 * (new reference). 1 for a generator's call, 0 for another, -1 on error. */
static int gen_split(DecoderObject *d, Py_ssize_t row, Py_ssize_t s, PyObject *v, PyObject **pair) {
    int gen = PyObject_IsTrue(PyList_GET_ITEM(d->gens, s));
    if (gen <= 0)
        return gen;
    PyObject *p = PyTuple_CheckExact(v) ? Py_NewRef(v) : PySequence_Tuple(v);
    if (p == NULL)
        return -1;
    if (PyTuple_GET_SIZE(p) != 2) {
        PyErr_Format(PyExc_ValueError, PyTuple_GET_SIZE(p) < 2 ? "not enough values to unpack (expected 2, got %zd)"
                                                             : "too many values to unpack (expected 2)",
                     PyTuple_GET_SIZE(p));
        Py_DECREF(p);
        return -1;
    }
    if (put(d->fid, row, PyTuple_GET_ITEM(p, 0)) < 0) {
        Py_DECREF(p);
        return -1;
    }
    *pair = p;
    return 1;
}

/* The detail of a call event of site s with kept value v (new reference). */
static PyObject *call_detail(DecoderObject *d, Py_ssize_t row, Py_ssize_t s, PyObject *v) {
    if (s >= d->nsites) {
        PyErr_SetString(PyExc_IndexError, "list index out of range");
        return NULL;
    }
    PyObject *pair = NULL, *r = NULL;
    int gen = gen_split(d, row, s, v, &pair);
    if (gen < 0)
        return NULL;
    if (gen)
        v = PyTuple_GET_ITEM(pair, 1);
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

/* What event_detail records of one event but its text (None), for a decoder without
 * texts: the frame ids, task switches and emitted events; calls and ends are skipped. */
static PyObject *event_sparse(DecoderObject *d, Py_ssize_t row, uint32_t k, PyObject *v) {
    uint32_t c = k & d->kind_mask;
    if (c == d->c_call) {
        Py_ssize_t s = (Py_ssize_t)(k >> d->kind_bits);
        PyObject *pair = NULL;
        if (s >= d->nsites) {
            PyErr_SetString(PyExc_IndexError, "list index out of range");
            return NULL;
        }
        if (gen_split(d, row, s, v, &pair) < 0)
            return NULL;
        Py_XDECREF(pair);
        Py_RETURN_NONE;
    }
    if (c == d->c_return || c == d->c_exception)
        Py_RETURN_NONE;
    return event_detail(d, row, k, v);
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
        conv = PyObject_CallFunction(sn_array_type, "sO", "I", ks);
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
        PyObject *text = d->texts ? event_detail(d, row, kp[i], v) : event_sparse(d, row, kp[i], v);
        Py_DECREF(v);
        if (text == NULL)
            goto done;
        int rc = d->texts ? PyList_Append(d->detail, text) : 0;
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
                         "rich_values", "rich_detail", "detail", "fid", "actor", "rich_rows", "rich_actor",
                         "rich_cols", "codes", "texts", NULL};
    PyObject *o[16], *codes;
    int texts = 1;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O!O!O!O!OOOOOOO!O!O!O!O!O!O!|p:Decoder", kw, &PyList_Type, &o[0],
                                     &PyList_Type, &o[1], &PyDict_Type, &o[2], &PyDict_Type, &o[3], &o[4], &o[5],
                                     &o[6], &o[7], &o[8], &o[9], &PyList_Type, &o[10], &PyDict_Type, &o[11],
                                     &PyDict_Type, &o[12], &PyList_Type, &o[13], &PyList_Type, &o[14], &PyList_Type,
                                     &o[15], &PyTuple_Type, &codes, &texts))
        return NULL;
    if (PyList_GET_SIZE(o[15]) != SN_RICH_FIELDS) {
        PyErr_SetString(PyExc_ValueError, "rich_cols: one list per RICH_FIELDS");
        return NULL;
    }
    for (int i = 0; i < SN_RICH_FIELDS; i++)
        if (!PyList_Check(PyList_GET_ITEM(o[15], i))) {
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
    d->texts_seen = texts ? PyMem_Calloc(SN_TEXT_CACHE, sizeof(TextSeen)) : NULL;
    if (d->prefix == NULL || (texts && d->texts_seen == NULL)) {
        Py_DECREF(d);
        return PyErr_NoMemory();
    }
    PyObject **slots[16] = {&d->names, &d->gens, &d->shown, &d->locations, &d->fmt, &d->formatted, &d->show,
                            &d->args_text, &d->rich_values, &d->rich_detail, &d->detail, &d->fid, &d->actor,
                            &d->rich_rows, &d->rich_actor, &d->rich_cols};
    for (int i = 0; i < 16; i++)
        *slots[i] = Py_NewRef(o[i]);
    d->texts = texts;
    d->max_items = limits[0];
    d->max_len = limits[1];
    /* The columns hold text, numbers, None and tuples of text: no cycle. Untracked,
     * the collections that a long decode triggers do not traverse them again and
     * again (each holds a row per event). */
    PyObject *columns[6] = {d->detail, d->fid, d->actor, d->rich_rows, d->rich_actor, d->rich_cols};
    for (int i = 0; i < 6; i++)
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
    Py_VISIT(d->rich_actor);
    Py_VISIT(d->rich_cols);
    for (int i = 0; i < SN_RICH_CACHE; i++) {
        Py_VISIT(d->seen[i].ev);
        Py_VISIT(d->seen[i].actor);
        Py_VISIT(d->seen[i].fields);
        Py_VISIT(d->seen[i].detail);
    }
    if (d->texts_seen != NULL)
        for (int i = 0; i < SN_TEXT_CACHE; i++) {
            Py_VISIT(d->texts_seen[i].obj);
            Py_VISIT(d->texts_seen[i].text);
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
    Py_CLEAR(d->rich_actor);
    Py_CLEAR(d->rich_cols);
    for (int i = 0; i < SN_RICH_CACHE; i++) {
        Py_CLEAR(d->seen[i].ev);
        Py_CLEAR(d->seen[i].actor);
        Py_CLEAR(d->seen[i].fields);
        Py_CLEAR(d->seen[i].detail);
    }
    if (d->texts_seen != NULL)
        for (int i = 0; i < SN_TEXT_CACHE; i++) {
            Py_CLEAR(d->texts_seen[i].obj);
            Py_CLEAR(d->texts_seen[i].text);
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
    PyMem_Free(d->texts_seen);
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


#define INTERN(var, text)                                       \
    do {                                                        \
        if ((var = PyUnicode_InternFromString(text)) == NULL)   \
            return -1;                                          \
    } while (0)

int sn_add_decoder_type(PyObject *module) {
    INTERN(s_true_text, "True");
    INTERN(s_false_text, "False");
    INTERN(s_none_text, "None");
    INTERN(s_empty, "");
    INTERN(s_sep, ", ");
    INTERN(s_eq, "=");
    INTERN(s_text, "text");
    if (PyType_Ready(&DecoderType) < 0)
        return -1;
    return PyModule_AddObjectRef(module, "Decoder", (PyObject *)&DecoderType);
}
