/* Per-function call statistics straight from the paired rows (pair_calls' columns, see
 * pairing.c): what analysis/performance.py's `performance_hotspots` aggregates from the
 * events frame, for the first call-analysis query of a recording whose frames are not
 * built (model/call_stats.py). No text is read or made, and nothing is sorted.
 *
 * Rows are read in the frame's order, only those kept (`keep`: the max_events bound).
 * A group is a (module, function): a function-traced call's site's (`site_group`, by
 * label), or an emitted call's own fields (looked up in, or added to, `groups`). Self
 * time is a call's duration minus the durations of its kept child calls (summed by
 * parent row), clipped at 0. An emitted call of a traced object (obj set) is a message,
 * counted only in a group no function-traced call is in (analysis/calls.py's
 * call_rows). The percentiles are the exact "nearest" ranks of a group's durations,
 * found by selection. An exception counts when its call is kept. A group's location is
 * its first call's (a name may be defined at several places).
 */
#include "native.h"
#include <math.h>

typedef struct {
    const int64_t *v;
    const uint8_t *valid;
} Column;

static inline int valid_at(const Column *c, Py_ssize_t i) { return (c->valid[i >> 3] >> (i & 7)) & 1; }

/* (group, actor) pairs seen: open addressing over x + 1 (0 is an empty slot) */
typedef struct {
    uint64_t *slots;
    size_t mask, len;
} PairSet;

/* 1 when x is new (then added), 0 when seen, -1 on error */
static int pair_add(PairSet *s, uint64_t x) {
    if (2 * (s->len + 1) > s->mask + 1) {
        size_t cap = (s->mask + 1) * 2;
        uint64_t *grown = PyMem_Calloc(cap, sizeof(uint64_t));
        if (grown == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        for (size_t i = 0; i <= s->mask; i++)
            if (s->slots[i]) {
                size_t j = (size_t)(s->slots[i] * 0x9E3779B97F4A7C15ULL) & (cap - 1);
                while (grown[j])
                    j = (j + 1) & (cap - 1);
                grown[j] = s->slots[i];
            }
        PyMem_Free(s->slots);
        s->slots = grown;
        s->mask = cap - 1;
    }
    uint64_t k = x + 1;
    size_t j = (size_t)(k * 0x9E3779B97F4A7C15ULL) & s->mask;
    for (; s->slots[j]; j = (j + 1) & s->mask)
        if (s->slots[j] == k)
            return 0;
    s->slots[j] = k;
    s->len++;
    return 1;
}

#define SWAP(a, b)          \
    do {                    \
        int64_t t_ = (a);   \
        (a) = (b);          \
        (b) = t_;           \
    } while (0)

/* Moves the k-th smallest of a[0..n) to a[k], the smaller before it, the larger after. */
static void select_kth(int64_t *a, Py_ssize_t n, Py_ssize_t k) {
    Py_ssize_t lo = 0, hi = n - 1;
    while (lo < hi) {
        int64_t x = a[lo], y = a[lo + (hi - lo) / 2], z = a[hi];
        int64_t p = x < y ? (y < z ? y : (x < z ? z : x)) : (x < z ? x : (y < z ? z : y));
        Py_ssize_t lt = lo, i = lo, gt = hi; /* [lo, lt) < p, [lt, i) == p, (gt, hi] > p */
        while (i <= gt) {
            if (a[i] < p) {
                SWAP(a[lt], a[i]);
                lt++;
                i++;
            } else if (a[i] > p) {
                SWAP(a[i], a[gt]);
                gt--;
            } else {
                i++;
            }
        }
        if (k < lt)
            hi = lt - 1;
        else if (k > gt)
            lo = gt + 1;
        else
            return;
    }
}

/* polars' "nearest" rank of quantile q among n values (round half up) */
static inline Py_ssize_t nearest_rank(Py_ssize_t n, double q) { return (Py_ssize_t)floor((double)(n - 1) * q + 0.5); }

/* the per-group columns computed (counts, sums and the first labels, by group) */
enum { S_CALLS, S_COUNT, S_TOTAL, S_SELF, S_NDUR, S_MAX, S_ACTORS, S_FIRST, S_EXC, S_P50, S_P95, N_STATS };

/* group of an emitted call: its (module, function) in `groups`, added when new */
static Py_ssize_t emitted_group(PyObject *groups, PyObject *module, PyObject *function) {
    PyObject *key = PyTuple_Pack(2, module, function);
    if (key == NULL)
        return -1;
    PyObject *g = PyDict_GetItemWithError(groups, key);
    Py_ssize_t r = -1;
    if (g != NULL) {
        r = PyLong_AsSsize_t(g);
    } else if (!PyErr_Occurred()) {
        PyObject *n = PyLong_FromSsize_t(PyDict_GET_SIZE(groups));
        if (n != NULL && PyDict_SetItem(groups, key, n) == 0)
            r = PyDict_GET_SIZE(groups) - 1;
        Py_XDECREF(n);
    }
    Py_DECREF(key);
    return r;
}

static PyObject *int_or_none(int64_t v, int valid) { return valid ? PyLong_FromLongLong(v) : Py_NewRef(Py_None); }

/* call_stats(columns, m, keep, site_group, groups, rich_module, rich_function, rich_obj,
 *            codes) -> per group: calls, count, total, self, mean, max, actors, first
 *            label, exceptions, p50, p95 (lists; None for null) */
static PyObject *call_stats(PyObject *self_, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 9) {
        PyErr_SetString(PyExc_TypeError, "call_stats(columns, m, keep, site_group, groups, rich_module, "
                                         "rich_function, rich_obj, codes) takes 9 arguments");
        return NULL;
    }
    PyObject *columns = args[0], *keep_o = args[2], *groups = args[4];
    PyObject *rmod = args[5], *rfun = args[6], *robj = args[7];
    Py_ssize_t m = PyLong_AsSsize_t(args[1]);
    long k_call, k_exc;
    if (m == -1 && PyErr_Occurred())
        return NULL;
    if (m < 0) {
        PyErr_SetString(PyExc_ValueError, "call_stats: m < 0");
        return NULL;
    }
    if (!PyArg_ParseTuple(args[8], "ll:codes", &k_call, &k_exc))
        return NULL;
    if (!PyTuple_Check(columns) || PyTuple_GET_SIZE(columns) != SN_PAIR_COLUMNS || !PyDict_Check(groups) ||
        !PyList_Check(rmod) || !PyList_Check(rfun) || !PyList_Check(robj) ||
        (keep_o != Py_None && (!PyBytes_Check(keep_o) || PyBytes_GET_SIZE(keep_o) != m))) {
        PyErr_SetString(PyExc_TypeError, "call_stats: pair_calls' columns, keep None or one byte per row, groups "
                                         "dict, rich fields lists");
        return NULL;
    }
    Column c[SN_PAIR_COLUMNS];
    for (int j = 0; j < SN_PAIR_COLUMNS; j++) {
        PyObject *pair = PyTuple_GET_ITEM(columns, j), *data, *valid;
        if (!PyArg_ParseTuple(pair, "YY:column", &data, &valid))
            return NULL;
        if (PyByteArray_GET_SIZE(data) < m * 8 || PyByteArray_GET_SIZE(valid) < (m + 7) / 8) {
            PyErr_SetString(PyExc_ValueError, "call_stats: a column shorter than m rows");
            return NULL;
        }
        c[j].v = (const int64_t *)PyByteArray_AS_STRING(data);
        c[j].valid = (const uint8_t *)PyByteArray_AS_STRING(valid);
    }
    const uint8_t *keep = keep_o == Py_None ? NULL : (const uint8_t *)PyBytes_AS_STRING(keep_o);
    Py_buffer sg;
    if (PyObject_GetBuffer(args[3], &sg, PyBUF_C_CONTIGUOUS) < 0)
        return NULL;
    const int64_t *site_group = sg.buf;
    Py_ssize_t nsites = sg.len / 8, n_rich = PyList_GET_SIZE(rmod);
    if (PyList_GET_SIZE(rfun) != n_rich || PyList_GET_SIZE(robj) != n_rich) {
        PyBuffer_Release(&sg);
        PyErr_SetString(PyExc_ValueError, "call_stats: the rich fields differ in length");
        return NULL;
    }
    for (Py_ssize_t j = 0; j < nsites; j++)
        if (site_group[j] < -1 || site_group[j] >= PyDict_GET_SIZE(groups)) {
            PyBuffer_Release(&sg);
            PyErr_SetString(PyExc_ValueError, "call_stats: a site group is not a value of groups (0, 1, ...)");
            return NULL;
        }
    int64_t n_keys = 0, n_actors = 0;
    for (Py_ssize_t i = 0; i < m; i++) {
        if (c[SN_PAIR_KEY].v[i] < 0 || c[SN_PAIR_ACTOR].v[i] < 0) {
            PyBuffer_Release(&sg);
            PyErr_SetString(PyExc_ValueError, "call_stats: a negative row or actor index");
            return NULL;
        }
        if (c[SN_PAIR_KEY].v[i] >= n_keys)
            n_keys = c[SN_PAIR_KEY].v[i] + 1;
        if (c[SN_PAIR_ACTOR].v[i] >= n_actors)
            n_actors = c[SN_PAIR_ACTOR].v[i] + 1;
    }
    int64_t *st[N_STATS] = {0};
    uint8_t *traced = NULL;
    Py_ssize_t n_groups = PyDict_GET_SIZE(groups);
    PairSet seen = {0};
    int32_t *grp = PyMem_Malloc((m ? m : 1) * sizeof(int32_t));
    int64_t *child = PyMem_Calloc(n_keys + 1, sizeof(int64_t)), *vals = NULL, *at = NULL;
    uint8_t *kept = PyMem_Calloc(n_keys + 1, 1);
    Py_ssize_t *last_group = PyMem_Malloc((n_actors + 1) * sizeof(Py_ssize_t));
    PyObject *result = NULL;
    seen.slots = PyMem_Calloc(64, sizeof(uint64_t));
    seen.mask = 63;
    if (grp == NULL || child == NULL || kept == NULL || last_group == NULL || seen.slots == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    for (int64_t a = 0; a <= n_actors; a++)
        last_group[a] = -1;
    /* the groups of the kept calls, the kept rows, the children's durations */
    for (Py_ssize_t i = 0; i < m; i++) {
        grp[i] = -1;
        if (keep != NULL && !keep[i])
            continue;
        kept[c[SN_PAIR_KEY].v[i]] = 1;
        if (c[SN_PAIR_KIND].v[i] != k_call)
            continue;
        Py_ssize_t g, r = c[SN_PAIR_RICH].v[i];
        if (valid_at(&c[SN_PAIR_RICH], i)) {
            if (r < 0 || r >= n_rich) {
                PyErr_SetString(PyExc_IndexError, "call_stats: emitted index out of range");
                goto done;
            }
            g = emitted_group(groups, PyList_GET_ITEM(rmod, r), PyList_GET_ITEM(rfun, r));
        } else {
            int64_t label = c[SN_PAIR_LABEL].v[i];
            g = label >= 0 && label < nsites ? site_group[label] : -1;
            if (g < 0)
                PyErr_SetString(PyExc_IndexError, "call_stats: a call's label names no site group");
        }
        if (g < 0)
            goto done;
        grp[i] = (int32_t)g;
        int64_t parent = c[SN_PAIR_PARENT].v[i];
        if (valid_at(&c[SN_PAIR_PARENT], i) && valid_at(&c[SN_PAIR_DURATION], i) && parent >= 0 && parent < n_keys)
            child[parent] += c[SN_PAIR_DURATION].v[i];
    }
    n_groups = PyDict_GET_SIZE(groups);
    for (int j = 0; j < N_STATS; j++)
        if ((st[j] = PyMem_Calloc(n_groups + 1, sizeof(int64_t))) == NULL) {
            PyErr_NoMemory();
            goto done;
        }
    if ((traced = PyMem_Calloc(n_groups + 1, 1)) == NULL || (at = PyMem_Calloc(n_groups + 1, 8)) == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t i = 0; i < m; i++)
        if (grp[i] >= 0 && valid_at(&c[SN_PAIR_CALL], i))
            traced[grp[i]] = 1;
    for (Py_ssize_t g = 0; g < n_groups; g++)
        st[S_FIRST][g] = -1;
    /* the calls each group counts (a message's row leaves the group when it is out) */
    for (Py_ssize_t i = 0; i < m; i++) {
        Py_ssize_t g = grp[i];
        if (g < 0) {
            int64_t call = c[SN_PAIR_CALL].v[i], label = c[SN_PAIR_LABEL].v[i];
            if ((keep == NULL || keep[i]) && c[SN_PAIR_KIND].v[i] == k_exc && valid_at(&c[SN_PAIR_CALL], i) &&
                call >= 0 && call < n_keys && kept[call] && label >= 0 && label < nsites && site_group[label] >= 0)
                st[S_EXC][site_group[label]]++;
            continue;
        }
        st[S_CALLS][g]++;
        int msg = !valid_at(&c[SN_PAIR_CALL], i) && valid_at(&c[SN_PAIR_RICH], i) &&
                  PyList_GET_ITEM(robj, c[SN_PAIR_RICH].v[i]) != Py_None;
        if (msg && traced[g]) {
            grp[i] = -1;
            continue;
        }
        st[S_COUNT][g]++;
        if (st[S_FIRST][g] < 0)
            st[S_FIRST][g] = c[SN_PAIR_LABEL].v[i];
        int64_t a = c[SN_PAIR_ACTOR].v[i];
        if (last_group[a] != g) { /* an actor mostly calls what it called last */
            int added = pair_add(&seen, (uint64_t)g * (uint64_t)n_actors + (uint64_t)a);
            if (added < 0)
                goto done;
            st[S_ACTORS][g] += added;
            last_group[a] = g;
        }
        if (!valid_at(&c[SN_PAIR_DURATION], i))
            continue;
        int64_t d = c[SN_PAIR_DURATION].v[i], own = d - child[c[SN_PAIR_KEY].v[i]];
        st[S_TOTAL][g] += d;
        st[S_SELF][g] += own > 0 ? own : 0;
        if (st[S_NDUR][g] == 0 || d > st[S_MAX][g])
            st[S_MAX][g] = d;
        st[S_NDUR][g]++;
    }
    /* each group's durations side by side, then the two ranks selected in them */
    Py_ssize_t n_vals = 0;
    for (Py_ssize_t g = 0; g < n_groups; g++) {
        at[g] = n_vals;
        n_vals += st[S_NDUR][g];
    }
    if ((vals = PyMem_Malloc((n_vals ? n_vals : 1) * sizeof(int64_t))) == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t i = 0; i < m; i++)
        if (grp[i] >= 0 && valid_at(&c[SN_PAIR_DURATION], i))
            vals[at[grp[i]]++] = c[SN_PAIR_DURATION].v[i];
    for (Py_ssize_t g = 0; g < n_groups; g++) {
        Py_ssize_t n = st[S_NDUR][g], k95 = nearest_rank(n, 0.95), k50 = nearest_rank(n, 0.5);
        if (n == 0)
            continue;
        int64_t *a = vals + at[g] - n;
        select_kth(a, n, k95); /* then the k50-th smallest is among those before it */
        st[S_P95][g] = a[k95];
        select_kth(a, k95 + 1, k50);
        st[S_P50][g] = a[k50];
    }
    result = PyTuple_New(11);
    for (int j = 0; result != NULL && j < 11; j++) {
        PyObject *list = PyList_New(n_groups);
        if (list == NULL) {
            Py_CLEAR(result);
            break;
        }
        PyTuple_SET_ITEM(result, j, list);
        for (Py_ssize_t g = 0; g < n_groups; g++) {
            int has = st[S_NDUR][g] > 0;
            int64_t first = st[S_FIRST][g];
            PyObject *x;
            switch (j) {
            case 0: x = PyLong_FromLongLong(st[S_CALLS][g]); break;
            case 1: x = PyLong_FromLongLong(st[S_COUNT][g]); break;
            case 2: x = PyLong_FromLongLong(st[S_TOTAL][g]); break;
            case 3: x = PyLong_FromLongLong(st[S_SELF][g]); break;
            case 4: x = int_or_none(has ? (int64_t)((double)st[S_TOTAL][g] / (double)st[S_NDUR][g]) : 0, has); break;
            case 5: x = int_or_none(st[S_MAX][g], has); break;
            case 6: x = PyLong_FromLongLong(st[S_ACTORS][g]); break;
            case 7: x = int_or_none(first, first >= 0); break;
            case 8: x = PyLong_FromLongLong(st[S_EXC][g]); break;
            case 9: x = int_or_none(st[S_P50][g], has); break;
            default: x = int_or_none(st[S_P95][g], has); break;
            }
            if (x == NULL) {
                Py_CLEAR(result);
                break;
            }
            PyList_SET_ITEM(list, g, x);
        }
    }
done:
    PyBuffer_Release(&sg);
    PyMem_Free(grp);
    PyMem_Free(child);
    PyMem_Free(kept);
    PyMem_Free(last_group);
    PyMem_Free(vals);
    PyMem_Free(at);
    PyMem_Free(seen.slots);
    PyMem_Free(traced);
    for (int j = 0; j < N_STATS; j++)
        PyMem_Free(st[j]);
    return result;
}

static PyMethodDef call_stats_methods[] = {
    {"call_stats", (PyCFunction)(void (*)(void))call_stats, METH_FASTCALL,
     "call_stats(columns, m, keep, site_group, groups, rich_module, rich_function, rich_obj, codes): per "
     "(module, function) group, the hotspots' aggregates of the paired rows (model/call_stats.py)."},
    {NULL},
};

int sn_add_call_stats(PyObject *module) { return PyModule_AddFunctions(module, call_stats_methods); }
