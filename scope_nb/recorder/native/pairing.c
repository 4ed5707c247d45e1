/* The rows of the events frame in their order, calls paired with their ends, in one
 * pass over the buffers: the C version of model/frames.py's `pair_calls` (the polars
 * reference), used when the frames are built (model/fast_events.py).
 *
 * Order: each thread's buffer holds its rows in (ts, position) order, so the frame's
 * order (ts, buffer, position) is a merge of the buffers' streams and of the critical
 * lane (sorted by the caller, position -1); a heap of stream cursors gives it without
 * sorting anything.
 *
 * Pairing: the call stream of every actor is a well-nested sequence of opens (CALL,
 * RESUME) and closes (RETURN, EXCEPTION, SUSPEND), so a stack per actor pairs it: a
 * close ends the segment on top; a close with nothing open (its call was dropped by a
 * bound) is an orphan and is dropped, as the reference drops closes that take the depth
 * to a new low. A generator or coroutine runs in segments (RESUME .. SUSPEND); a segment
 * belongs to the latest CALL of the same frame id. The actor running a row is the last
 * task switch of its buffer, else the buffer's thread; an emitted event names its own.
 *
 * Out, one row per call, end and emitted event (markers are dropped), int64 columns
 * with Arrow validity bitmaps (bytearrays, written in place: no copy): the row, its kind code, actor index, depth, parent and
 * call rows, duration (a call row has it; its end row has the call's depth and parent),
 * label (site index of a call or end, nsites + emitted index of an emitted event: where
 * module, function and location are looked up) and the emitted index.
 */
#include "native.h"


typedef struct {
    int64_t call_out; /* out row of the segment's call, -1 when unknown */
} Seg;

typedef struct {
    Seg *items;
    Py_ssize_t len, cap;
} Stack;

typedef struct { /* one chunk of a stream */
    Py_buffer ks, ts;
    int has_ks, has_ts, wide_ks;
    int64_t row0, rich0, pos0;
    Py_ssize_t n;
} Part;

typedef struct { /* a buffer's chunks in order, or the critical lane */
    Py_ssize_t first, count; /* its parts */
    Py_ssize_t part, at;     /* cursor */
    int64_t buf, rich;       /* buffer index; emitted index of the next emitted row */
    const int64_t *bufs;     /* the critical lane: each row's buffer index, */
    const int64_t *rows;     /* number */
    const int64_t *riches;   /* and emitted index */
    Py_ssize_t actor;        /* the actor running its rows (its last task switch) */
} Stream;

typedef struct { /* the columns are written in place in the bytearrays returned */
    int64_t *v[SN_PAIR_COLUMNS];
    uint8_t *valid[SN_PAIR_COLUMNS];
    PyObject *data[SN_PAIR_COLUMNS], *bits[SN_PAIR_COLUMNS];
    Py_ssize_t m, rows; /* rows written; rows of the frame (more with calls_only) */
} Out;

static int stack_push(Stack *s, Seg seg) {
    if (s->len == s->cap) {
        Py_ssize_t cap = s->cap ? s->cap * 2 : 16;
        Seg *items = PyMem_Realloc(s->items, cap * sizeof(Seg));
        if (items == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        s->items = items;
        s->cap = cap;
    }
    s->items[s->len++] = seg;
    return 0;
}

static inline void put(Out *o, int col, int64_t x, int valid) {
    Py_ssize_t m = o->m;
    o->v[col][m] = valid ? x : 0;
    if (valid)
        o->valid[col][m >> 3] |= (uint8_t)(1u << (m & 7));
}

static inline int is_valid(const Out *o, int col, Py_ssize_t m) { return (o->valid[col][m >> 3] >> (m & 7)) & 1; }

/* the index of actor `a` in `actors` (added when new), through `index` (actor -> i) */
static Py_ssize_t actor_index(PyObject *index, PyObject *actors, PyObject *a) {
    PyObject *i = PyDict_GetItemWithError(index, a);
    if (i != NULL)
        return PyLong_AsSsize_t(i);
    if (PyErr_Occurred())
        return -1;
    Py_ssize_t n = PyList_GET_SIZE(actors);
    PyObject *ni = PyLong_FromSsize_t(n);
    if (ni == NULL || PyDict_SetItem(index, a, ni) < 0 || PyList_Append(actors, a) < 0) {
        Py_XDECREF(ni);
        return -1;
    }
    Py_DECREF(ni);
    return n;
}

/* dict[row], borrowed; NULL without an error when absent */
static PyObject *row_item(PyObject *dict, int64_t row) {
    PyObject *key = PyLong_FromLongLong(row);
    if (key == NULL)
        return NULL;
    PyObject *v = PyDict_GetItemWithError(dict, key);
    Py_DECREF(key);
    return v;
}

/* The frame id of `row`, a new reference, or NULL without an error when it has none.
 * `fids` is a dict of row -> id (the live decoder's, sparse), or `col`, when its buffer is
 * set, one int64 per row with 0 for none (a raw trace's column, which a generator-heavy
 * program fills: a dict of it took several times the column's memory). */
static PyObject *fid_of(PyObject *fids, const Py_buffer *col, int64_t row) {
    if (col->buf != NULL) {
        if (row < 0 || row >= col->len / (Py_ssize_t)sizeof(int64_t)) {
            PyErr_Format(PyExc_IndexError, "pair_calls: row %lld is past the fids column", (long long)row);
            return NULL;
        }
        int64_t v = ((const int64_t *)col->buf)[row];
        return v ? PyLong_FromLongLong(v) : NULL;
    }
    PyObject *v = row_item(fids, row);
    Py_XINCREF(v);
    return v;
}

/* the actor named for `row` in `actors_of` (a task switch's task) */
static Py_ssize_t named_actor(PyObject *actors_of, PyObject *index, PyObject *actors, int64_t row) {
    PyObject *a = row_item(actors_of, row);
    if (a == NULL) {
        if (!PyErr_Occurred())
            PyErr_Format(PyExc_KeyError, "pair_calls: row %lld names no actor", (long long)row);
        return -1;
    }
    return actor_index(index, actors, a);
}

static inline int64_t part_ts(const Part *p, Py_ssize_t i) { return ((const int64_t *)p->ts.buf)[i]; }

static inline int64_t part_ks(const Part *p, Py_ssize_t i) {
    return p->wide_ks ? ((const int64_t *)p->ks.buf)[i] : (int64_t)((const uint32_t *)p->ks.buf)[i];
}

/* the (ts, buf, pos) of a stream's next row */
static inline void next_key(const Stream *s, const Part *parts, int64_t *key) {
    const Part *p = &parts[s->first + s->part];
    key[0] = part_ts(p, s->at);
    key[1] = s->bufs ? s->bufs[s->at] : s->buf;
    key[2] = s->bufs ? -1 : p->pos0 + s->at;
}

static inline int before(const Stream *a, const Stream *b, const Part *parts) {
    int64_t ka[3], kb[3];
    next_key(a, parts, ka);
    next_key(b, parts, kb);
    for (int i = 0; i < 3; i++)
        if (ka[i] != kb[i])
            return ka[i] < kb[i];
    return 0;
}

static void sift_down(Py_ssize_t *heap, Py_ssize_t n, Py_ssize_t i, const Stream *st, const Part *parts) {
    for (;;) {
        Py_ssize_t l = 2 * i + 1, r = l + 1, best = i;
        if (l < n && before(&st[heap[l]], &st[heap[best]], parts))
            best = l;
        if (r < n && before(&st[heap[r]], &st[heap[best]], parts))
            best = r;
        if (best == i)
            return;
        Py_ssize_t t = heap[i];
        heap[i] = heap[best];
        heap[best] = t;
        i = best;
    }
}

typedef struct {
    long call, ret, exc, suspend, resume, sw, rich, mask, bits, k_call, k_return, k_exception;
} Codes;

static int read_codes(PyObject *codes, Codes *c) {
    long x[12];
    if (!PyTuple_Check(codes) || PyTuple_GET_SIZE(codes) != 12) {
        PyErr_SetString(PyExc_TypeError, "pair_calls: codes must be a tuple of 12 ints");
        return -1;
    }
    for (int i = 0; i < 12; i++) {
        x[i] = PyLong_AsLong(PyTuple_GET_ITEM(codes, i));
        if (x[i] == -1 && PyErr_Occurred())
            return -1;
    }
    *c = (Codes){x[0], x[1], x[2], x[3], x[4], x[5], x[6], x[7], x[8], x[9], x[10], x[11]};
    return 0;
}

/* a part from (ks, ts, pos0, row0, rich0) */
static int read_part(PyObject *t, Part *p) {
    PyObject *ks, *ts;
    long long pos0, row0, rich0;
    if (!PyArg_ParseTuple(t, "OOLLL:part", &ks, &ts, &pos0, &row0, &rich0))
        return -1;
    if (PyObject_GetBuffer(ks, &p->ks, PyBUF_C_CONTIGUOUS) < 0)
        return -1;
    p->has_ks = 1;
    if (PyObject_GetBuffer(ts, &p->ts, PyBUF_C_CONTIGUOUS) < 0)
        return -1;
    p->has_ts = 1;
    p->n = p->ts.len / 8;
    p->wide_ks = p->ks.len == p->n * 8;
    if (p->ts.len % 8 || (!p->wide_ks && p->ks.len != p->n * 4)) {
        PyErr_SetString(PyExc_ValueError, "pair_calls: a part needs int64 ts and one uint32 or int64 ks per row");
        return -1;
    }
    p->row0 = row0;
    p->rich0 = rich0;
    p->pos0 = pos0;
    return 0;
}

typedef struct {
    Part *parts;
    Py_ssize_t n_parts;
    Stream *st;
    Py_ssize_t n_st;
    Py_buffer lane[3]; /* the critical lane's bufs, rows, riches */
    int has_lane;
} Input;

/* streams: [(buf, [part, ...]), ...]; critical: (ks, ts, bufs, rows, riches) in order */
static int read_input(PyObject *streams, PyObject *critical, Input *in, Py_ssize_t *total) {
    Py_ssize_t n_streams = PyList_GET_SIZE(streams), n_parts = 1;
    for (Py_ssize_t i = 0; i < n_streams; i++) {
        PyObject *s = PyList_GET_ITEM(streams, i);
        if (!PyTuple_Check(s) || PyTuple_GET_SIZE(s) != 2 || !PyList_Check(PyTuple_GET_ITEM(s, 1))) {
            PyErr_SetString(PyExc_TypeError, "pair_calls: a stream is (buffer index, [parts])");
            return -1;
        }
        n_parts += PyList_GET_SIZE(PyTuple_GET_ITEM(s, 1));
    }
    in->parts = PyMem_Calloc(n_parts, sizeof(Part));
    in->st = PyMem_Calloc(n_streams + 1, sizeof(Stream));
    if (in->parts == NULL || in->st == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    *total = 0;
    for (Py_ssize_t i = 0; i < n_streams; i++) {
        PyObject *s = PyList_GET_ITEM(streams, i), *list = PyTuple_GET_ITEM(s, 1);
        Stream *t = &in->st[in->n_st];
        t->buf = PyLong_AsLongLong(PyTuple_GET_ITEM(s, 0));
        if (t->buf == -1 && PyErr_Occurred())
            return -1;
        t->first = in->n_parts;
        for (Py_ssize_t j = 0; j < PyList_GET_SIZE(list); j++) {
            Part *p = &in->parts[in->n_parts++];
            if (read_part(PyList_GET_ITEM(list, j), p) < 0)
                return -1;
            if (p->n == 0) { /* nothing to visit: its slot is reused */
                PyBuffer_Release(&p->ks);
                PyBuffer_Release(&p->ts);
                memset(p, 0, sizeof(Part));
                in->n_parts--;
                continue;
            }
            *total += p->n;
        }
        t->count = in->n_parts - t->first;
        if (t->count)
            in->n_st++;
    }
    PyObject *ks, *ts, *cols[3];
    if (!PyArg_ParseTuple(critical, "OOOOO:critical", &ks, &ts, &cols[0], &cols[1], &cols[2]))
        return -1;
    PyObject *t = Py_BuildValue("(OOLLL)", ks, ts, -1LL, 0LL, 0LL);
    Part *p = &in->parts[in->n_parts++];
    int rc = t == NULL ? -1 : read_part(t, p);
    Py_XDECREF(t);
    if (rc < 0)
        return -1;
    for (; in->has_lane < 3; in->has_lane++) {
        if (PyObject_GetBuffer(cols[in->has_lane], &in->lane[in->has_lane], PyBUF_C_CONTIGUOUS) < 0)
            return -1;
        if (in->lane[in->has_lane].len != p->n * 8) {
            in->has_lane++;
            PyErr_SetString(PyExc_ValueError, "pair_calls: the critical lane needs one int64 buffer index, row and "
                                              "emitted index per row");
            return -1;
        }
    }
    if (p->n) {
        Stream *s = &in->st[in->n_st++];
        s->first = in->n_parts - 1;
        s->count = 1;
        s->bufs = in->lane[0].buf;
        s->rows = in->lane[1].buf;
        s->riches = in->lane[2].buf;
        *total += p->n;
    }
    return 0;
}

static void release_input(Input *in) {
    for (Py_ssize_t j = 0; j < in->n_parts; j++) {
        if (in->parts[j].has_ks)
            PyBuffer_Release(&in->parts[j].ks);
        if (in->parts[j].has_ts)
            PyBuffer_Release(&in->parts[j].ts);
    }
    for (int j = 0; j < in->has_lane; j++)
        PyBuffer_Release(&in->lane[j]);
    PyMem_Free(in->parts);
    PyMem_Free(in->st);
}

/* pair_calls(streams, critical, thread_actor, actors_of, rich_actors, fids, durations, nsites,
 *            codes, calls_only)
 *   -> ((data, validity) bytearrays of each of the 9 columns ..., m, rows, actors): m rows
 *   written of the frame's `rows`; with calls_only, only the call and exception rows (what
 *   call_stats reads) are written, the others counted. */
static PyObject *pair_calls(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 10) {
        PyErr_SetString(PyExc_TypeError, "pair_calls(streams, critical, thread_actor, actors_of, rich_actors, fids, "
                                         "durations, nsites, codes, calls_only) takes 10 arguments");
        return NULL;
    }
    PyObject *thread_actor = args[2], *actors_of = args[3], *rich_actors = args[4], *fids = args[5];
    PyObject *durations = args[6];
    Py_ssize_t nsites = PyLong_AsSsize_t(args[7]), total = 0, n_stacks = 0;
    Codes cd;
    int calls_only = PyObject_IsTrue(args[9]);
    if ((nsites == -1 && PyErr_Occurred()) || calls_only < 0 || read_codes(args[8], &cd) < 0)
        return NULL;
    if (!PyList_Check(args[0]) || !PyTuple_Check(args[1]) || !PyDict_Check(thread_actor) || !PyDict_Check(actors_of) ||
        !PyList_Check(rich_actors) || !(PyDict_Check(fids) || PyObject_CheckBuffer(fids)) ||
        !PyList_Check(durations)) {
        PyErr_SetString(PyExc_TypeError, "pair_calls: streams list, critical tuple, thread_actor and actors_of dicts, "
                                         "rich_actors list, fids a dict or an int64 buffer, durations list");
        return NULL;
    }
    Py_buffer fid_col = {0};
    if (!PyDict_Check(fids)) {
        if (PyObject_GetBuffer(fids, &fid_col, PyBUF_C_CONTIGUOUS) < 0)
            return NULL;
        if (fid_col.itemsize != (Py_ssize_t)sizeof(int64_t)) {
            PyBuffer_Release(&fid_col);
            PyErr_SetString(PyExc_TypeError, "pair_calls: a fids buffer holds one int64 per row");
            return NULL;
        }
    }
    Input in = {0};
    Out o = {{0}};
    Stack *stacks = NULL;
    Py_ssize_t *heap = NULL;
    PyObject *result = NULL, *actors = PyList_New(0), *index = PyDict_New(), *calls_of = PyDict_New();
    if (actors == NULL || index == NULL || calls_of == NULL || read_input(args[0], args[1], &in, &total) < 0)
        goto done;
    Stream *st = in.st;
    const Part *parts = in.parts;
    for (Py_ssize_t j = 0; j < in.n_st; j++) {
        st[j].rich = parts[st[j].first].rich0;
        st[j].actor = -1;
        if (st[j].bufs == NULL) {
            PyObject *name = row_item(thread_actor, st[j].buf);
            if (name == NULL) {
                if (!PyErr_Occurred())
                    PyErr_Format(PyExc_KeyError, "pair_calls: buffer %lld has no thread actor", (long long)st[j].buf);
                goto done;
            }
            if ((st[j].actor = actor_index(index, actors, name)) < 0)
                goto done;
        }
    }
    heap = PyMem_Calloc(in.n_st + 1, sizeof(Py_ssize_t));
    if (heap == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    for (int j = 0; j < SN_PAIR_COLUMNS; j++) {
        o.data[j] = PyByteArray_FromStringAndSize(NULL, (total ? total : 1) * (Py_ssize_t)sizeof(int64_t));
        o.bits[j] = PyByteArray_FromStringAndSize(NULL, (total + 8) / 8);
        if (o.data[j] == NULL || o.bits[j] == NULL)
            goto done;
        o.v[j] = (int64_t *)PyByteArray_AS_STRING(o.data[j]);
        o.valid[j] = (uint8_t *)PyByteArray_AS_STRING(o.bits[j]);
        memset(o.valid[j], 0, (size_t)(total + 8) / 8);
    }
    Py_ssize_t hn = in.n_st;
    for (Py_ssize_t j = 0; j < hn; j++)
        heap[j] = j;
    for (Py_ssize_t j = hn / 2; j-- > 0;)
        sift_down(heap, hn, j, st, parts);
    while (hn > 0) {
        Stream *s = &st[heap[0]];
        const Part *p = &parts[s->first + s->part];
        Py_ssize_t i = s->at;
        int64_t row = s->rows ? s->rows[i] : p->row0 + i, ks = part_ks(p, i), ts = part_ts(p, i);
        long c = (long)(ks & cd.mask);
        int64_t rich = s->riches ? s->riches[i] : s->rich;
        if (c == cd.rich && s->riches == NULL)
            s->rich++;
        if (++s->at == p->n) { /* the cursor moves on before anything can fail */
            s->at = 0;
            if (++s->part == s->count)
                heap[0] = heap[--hn];
            else
                s->rich = parts[s->first + s->part].rich0;
        }
        if (hn > 0)
            sift_down(heap, hn, 0, st, parts);
        if (c == cd.rich) {
            if (rich < 0 || rich >= PyList_GET_SIZE(rich_actors)) {
                PyErr_Format(PyExc_IndexError, "pair_calls: emitted event %lld (row %lld) has no actor",
                             (long long)rich, (long long)row);
                goto done;
            }
            Py_ssize_t ai = actor_index(index, actors, PyList_GET_ITEM(rich_actors, rich));
            if (ai < 0)
                goto done;
            PyObject *dur = rich < PyList_GET_SIZE(durations) ? PyList_GET_ITEM(durations, rich) : Py_None;
            long long d = dur == Py_None ? 0 : PyLong_AsLongLong(dur);
            if (d == -1 && PyErr_Occurred())
                goto done;
            o.rows++;
            if (calls_only && (ks >> cd.bits) != cd.k_call)
                continue;
            put(&o, SN_PAIR_KEY, row, 1);
            put(&o, SN_PAIR_KIND, ks >> cd.bits, 1);
            put(&o, SN_PAIR_ACTOR, ai, 1);
            put(&o, SN_PAIR_DURATION, d, dur != Py_None);
            put(&o, SN_PAIR_LABEL, nsites + rich, 1);
            put(&o, SN_PAIR_RICH, rich, 1);
            o.m++;
            continue;
        }
        if (c == cd.sw) {
            if ((s->actor = named_actor(actors_of, index, actors, row)) < 0)
                goto done;
            continue;
        }
        Py_ssize_t ai = s->actor;
        while (ai >= n_stacks) { /* one stack per actor, grown as actors appear */
            Stack *grown = PyMem_Realloc(stacks, (n_stacks * 2 + 8) * sizeof(Stack));
            if (grown == NULL) {
                PyErr_NoMemory();
                goto done;
            }
            memset(grown + n_stacks, 0, (n_stacks + 8) * sizeof(Stack));
            stacks = grown;
            n_stacks = n_stacks * 2 + 8;
        }
        Stack *sk = &stacks[ai];
        int64_t site = ks >> cd.bits;
        if (c == cd.call || c == cd.resume) {
            /* no generator, no lookup (a dict's size is read only when fids is one) */
            PyObject *fid = fid_col.buf != NULL || PyDict_GET_SIZE(fids) ? fid_of(fids, &fid_col, row) : NULL;
            if (fid == NULL && PyErr_Occurred())
                goto done;
            Seg seg = {-1};
            if (c == cd.call) {
                int64_t below = sk->len ? sk->items[sk->len - 1].call_out : -1;
                put(&o, SN_PAIR_KEY, row, 1);
                put(&o, SN_PAIR_KIND, cd.k_call, 1);
                put(&o, SN_PAIR_ACTOR, ai, 1);
                put(&o, SN_PAIR_DEPTH, sk->len + 1, 1);
                put(&o, SN_PAIR_PARENT, below >= 0 ? o.v[SN_PAIR_KEY][below] : 0, below >= 0);
                put(&o, SN_PAIR_CALL, row, 1);
                put(&o, SN_PAIR_LABEL, site, 1);
                o.v[SN_PAIR_DURATION][o.m] = ts; /* its start, until its end makes it a duration */
                seg.call_out = o.m++;
                o.rows++;
                if (fid != NULL) {
                    PyObject *at = PyLong_FromSsize_t(seg.call_out);
                    int failed = at == NULL || PyDict_SetItem(calls_of, fid, at) < 0;
                    Py_XDECREF(at);
                    Py_DECREF(fid);
                    if (failed)
                        goto done;
                }
            } else if (fid != NULL) {
                PyObject *at = PyDict_GetItemWithError(calls_of, fid);
                Py_DECREF(fid);
                if (at == NULL && PyErr_Occurred())
                    goto done;
                if (at != NULL)
                    seg.call_out = PyLong_AsSsize_t(at);
            }
            if (stack_push(sk, seg) < 0)
                goto done;
        } else if (c == cd.ret || c == cd.exc || c == cd.suspend) {
            if (sk->len == 0)
                continue; /* an orphan close */
            int64_t co = sk->items[--sk->len].call_out;
            if (c == cd.suspend)
                continue; /* a segment's end */
            if (co >= 0 && !is_valid(&o, SN_PAIR_DURATION, co)) {
                o.v[SN_PAIR_DURATION][co] = ts - o.v[SN_PAIR_DURATION][co];
                o.valid[SN_PAIR_DURATION][co >> 3] |= (uint8_t)(1u << (co & 7));
            }
            o.rows++;
            if (calls_only && c == cd.ret)
                continue;
            put(&o, SN_PAIR_KEY, row, 1);
            put(&o, SN_PAIR_KIND, c == cd.ret ? cd.k_return : cd.k_exception, 1);
            put(&o, SN_PAIR_ACTOR, ai, 1);
            put(&o, SN_PAIR_LABEL, site, 1);
            if (co >= 0) {
                put(&o, SN_PAIR_DEPTH, o.v[SN_PAIR_DEPTH][co], 1);
                put(&o, SN_PAIR_PARENT, o.v[SN_PAIR_PARENT][co], is_valid(&o, SN_PAIR_PARENT, co));
                put(&o, SN_PAIR_CALL, o.v[SN_PAIR_KEY][co], 1);
            }
            o.m++;
        }
    }
    result = PyTuple_New(SN_PAIR_COLUMNS + 3);
    if (result == NULL)
        goto done;
    for (int j = 0; j < SN_PAIR_COLUMNS; j++) {
        PyObject *pair = NULL; /* no copy: shrunk to the rows written */
        if (PyByteArray_Resize(o.data[j], o.m * (Py_ssize_t)sizeof(int64_t)) == 0 &&
            PyByteArray_Resize(o.bits[j], (o.m + 7) / 8) == 0)
            pair = PyTuple_Pack(2, o.data[j], o.bits[j]);
        if (pair == NULL) {
            Py_CLEAR(result);
            goto done;
        }
        PyTuple_SET_ITEM(result, j, pair);
    }
    PyTuple_SET_ITEM(result, SN_PAIR_COLUMNS, PyLong_FromSsize_t(o.m));
    PyTuple_SET_ITEM(result, SN_PAIR_COLUMNS + 1, PyLong_FromSsize_t(o.rows));
    PyTuple_SET_ITEM(result, SN_PAIR_COLUMNS + 2, Py_NewRef(actors));
done:
    if (fid_col.buf != NULL)
        PyBuffer_Release(&fid_col);
    release_input(&in);
    for (int j = 0; j < SN_PAIR_COLUMNS; j++) {
        Py_XDECREF(o.data[j]);
        Py_XDECREF(o.bits[j]);
    }
    for (Py_ssize_t j = 0; j < n_stacks; j++)
        PyMem_Free(stacks[j].items);
    PyMem_Free(stacks);
    PyMem_Free(heap);
    Py_XDECREF(actors);
    Py_XDECREF(index);
    Py_XDECREF(calls_of);
    return result;
}

static PyMethodDef pairing_methods[] = {
    {"pair_calls", (PyCFunction)(void (*)(void))pair_calls, METH_FASTCALL,
     "pair_calls(parts, critical, thread_actor, actors_of, rich_actors, fids, durations, nsites, codes, "
     "calls_only): the frame's rows in order, calls paired with their ends (model/fast_events.py)."},
    {NULL},
};

int sn_add_pairing(PyObject *module) { return PyModule_AddFunctions(module, pairing_methods); }
