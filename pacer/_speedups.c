/*
 * pacer._speedups: the per-job loops of a dequeue, in C (pacer/_fallback.py has the same in Python).
 *
 * configure(Lease, Descriptor, Reserved, lease_expiry) names the classes to make and the function that turns a
 * lease's expiry (µs) into its datetime; the module keeps them.
 *
 * leases(jobs, expiries, epoch, queue, partition) makes the Lease of each job (a Reserved) whose expiry is not
 * None: its Descriptor, its claim "<epoch>.<dispatches + 1>" and its expiry's datetime. The jobs of one write
 * share their expiry and mostly their dispatch count, so each distinct one is made once. Leases and descriptors
 * are frozen dataclasses: their fields are set past the frozen __setattr__, as their own __init__ sets them.
 *
 * unpack_jobs(packed) reads a packed refill (pacer/storage/mysql.py): per job seven numbers as 16 hex digits
 * (64-bit two's complement: body length, priority, run_after, local_id unsigned, attempts allowed and remaining,
 * dispatches), then the body. A job cut short at the end (group_concat_max_len) is left out. The jobs come back
 * as Reserved tuples sorted by (priority, run_after, local_id), the dispatch order.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>

static PyObject *Lease, *Descriptor, *Reserved, *lease_expiry;
static PyObject *s_queue, *s_partition, *s_priority, *s_local_id, *s_descriptor, *s_body, *s_claim,
    *s_attempts_allowed, *s_attempts_remaining, *s_lease_expires_at, *empty_tuple;

enum { FIELDS = 7, DIGITS = 16, HEADER = FIELDS * DIGITS };

static PyObject *
configure(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "configure takes 4 arguments: Lease, Descriptor, Reserved, lease_expiry");
        return NULL;
    }
    if (!PyType_Check(args[0]) || !PyType_Check(args[1]) || !PyType_Check(args[2]) ||
        !PyType_IsSubtype((PyTypeObject *)args[2], &PyTuple_Type) || !PyCallable_Check(args[3])) {
        PyErr_SetString(PyExc_TypeError, "configure: two classes, a tuple class and a callable");
        return NULL;
    }
    PyObject **slots[] = {&Lease, &Descriptor, &Reserved, &lease_expiry};
    for (int i = 0; i < 4; i++) {
        Py_INCREF(args[i]);
        Py_XSETREF(*slots[i], args[i]);
    }
    Py_RETURN_NONE;
}

/* A new instance of a frozen dataclass with its fields set (names and values, n of each): set as
 * object.__setattr__ sets them, which is what the dataclass's own __init__ does past its frozen __setattr__. */
static PyObject *
made(PyObject *cls, PyObject *const *names, PyObject *const *values, int n)
{
    PyObject *obj = PyBaseObject_Type.tp_new((PyTypeObject *)cls, empty_tuple, NULL);
    if (obj == NULL) {
        return NULL;
    }
    for (int i = 0; i < n; i++) {
        if (PyObject_GenericSetAttr(obj, names[i], values[i]) < 0) {
            Py_DECREF(obj);
            return NULL;
        }
    }
    return obj;
}

static PyObject *
leases(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 5) {
        PyErr_SetString(PyExc_TypeError, "leases takes 5 arguments: jobs, expiries, epoch, queue, partition");
        return NULL;
    }
    if (Lease == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "pacer._speedups.configure() was not called");
        return NULL;
    }
    PyObject *jobs = args[0], *expiries = args[1], *queue = args[3], *partition = args[4];
    if (!PyList_Check(jobs) || !PyList_Check(expiries) || PyList_GET_SIZE(jobs) != PyList_GET_SIZE(expiries)) {
        PyErr_SetString(PyExc_TypeError, "leases: jobs and expiries must be lists of the same length");
        return NULL;
    }
    long long epoch = PyLong_AsLongLong(args[2]);
    if (epoch == -1 && PyErr_Occurred()) {
        return NULL;
    }
    Py_ssize_t count = PyList_GET_SIZE(jobs);
    PyObject *out = PyList_New(0);
    PyObject *moment = NULL, *moment_us = NULL, *claim = NULL;
    long long claim_for = -1;
    if (out == NULL) {
        return NULL;
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *job = PyList_GET_ITEM(jobs, i), *expires = PyList_GET_ITEM(expiries, i);
        if (expires == Py_None) {
            continue;
        }
        if (!PyTuple_Check(job) || PyTuple_GET_SIZE(job) != 6) {
            PyErr_SetString(PyExc_TypeError, "leases: each job must be a Reserved");
            goto fail;
        }
        int same = moment_us == NULL ? 0 : PyObject_RichCompareBool(expires, moment_us, Py_EQ);
        if (same < 0) {
            goto fail;
        }
        if (!same) {
            PyObject *next = PyObject_CallOneArg(lease_expiry, expires);
            if (next == NULL) {
                goto fail;
            }
            Py_XSETREF(moment, next);
            Py_INCREF(expires);
            Py_XSETREF(moment_us, expires);
        }
        long long dispatches = PyLong_AsLongLong(PyTuple_GET_ITEM(job, 4));
        if (dispatches == -1 && PyErr_Occurred()) {
            goto fail;
        }
        if (claim == NULL || dispatches != claim_for) {
            PyObject *next = PyUnicode_FromFormat("%lld.%lld", epoch, dispatches + 1);
            if (next == NULL) {
                goto fail;
            }
            Py_XSETREF(claim, next);
            claim_for = dispatches;
        }
        PyObject *const descriptor_names[] = {s_queue, s_partition, s_priority, s_local_id};
        PyObject *const descriptor_values[] = {queue, partition, PyTuple_GET_ITEM(job, 1), PyTuple_GET_ITEM(job, 0)};
        PyObject *descriptor = made(Descriptor, descriptor_names, descriptor_values, 4);
        if (descriptor == NULL) {
            goto fail;
        }
        PyObject *const lease_names[] = {s_descriptor,         s_body,          s_claim, s_attempts_allowed,
                                         s_attempts_remaining, s_lease_expires_at};
        PyObject *const lease_values[] = {descriptor,         PyTuple_GET_ITEM(job, 5), claim,
                                          PyTuple_GET_ITEM(job, 2), PyTuple_GET_ITEM(job, 3), moment};
        PyObject *lease = made(Lease, lease_names, lease_values, 6);
        Py_DECREF(descriptor);
        if (lease == NULL) {
            goto fail;
        }
        int appended = PyList_Append(out, lease);
        Py_DECREF(lease);
        if (appended < 0) {
            goto fail;
        }
    }
    Py_XDECREF(moment);
    Py_XDECREF(moment_us);
    Py_XDECREF(claim);
    return out;
fail:
    Py_XDECREF(moment);
    Py_XDECREF(moment_us);
    Py_XDECREF(claim);
    Py_DECREF(out);
    return NULL;
}

typedef struct {
    int64_t priority, run_after;
    uint64_t local_id;
    PyObject *job;
} Unpacked;

static int
dispatch_order(const void *a, const void *b)
{
    const Unpacked *x = a, *y = b;
    if (x->priority != y->priority) {
        return x->priority < y->priority ? -1 : 1;
    }
    if (x->run_after != y->run_after) {
        return x->run_after < y->run_after ? -1 : 1;
    }
    return x->local_id < y->local_id ? -1 : x->local_id > y->local_id;
}

/* 16 hex digits (either case) as 64 bits; -1 if one is not a hex digit. */
static int
hex64(const unsigned char *digits, uint64_t *value)
{
    uint64_t v = 0;
    for (int i = 0; i < DIGITS; i++) {
        unsigned char c = digits[i];
        unsigned int d;
        if (c >= '0' && c <= '9') {
            d = c - '0';
        } else if (c >= 'A' && c <= 'F') {
            d = c - 'A' + 10;
        } else if (c >= 'a' && c <= 'f') {
            d = c - 'a' + 10;
        } else {
            return -1;
        }
        v = (v << 4) | d;
    }
    *value = v;
    return 0;
}

static PyObject *
unpack_jobs(PyObject *module, PyObject *packed)
{
    if (Reserved == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "pacer._speedups.configure() was not called");
        return NULL;
    }
    if (!PyBytes_Check(packed)) {
        PyErr_SetString(PyExc_TypeError, "unpack_jobs: packed must be bytes");
        return NULL;
    }
    const unsigned char *data = (const unsigned char *)PyBytes_AS_STRING(packed);
    Py_ssize_t size = PyBytes_GET_SIZE(packed), at = 0, count = 0;
    Unpacked *jobs = PyMem_Malloc(sizeof(Unpacked) * (size_t)(size / HEADER + 1));
    PyObject *out = NULL;
    if (jobs == NULL) {
        return PyErr_NoMemory();
    }
    while (at + HEADER <= size) {
        uint64_t field[FIELDS];
        for (int f = 0; f < FIELDS; f++) {
            if (hex64(data + at + f * DIGITS, &field[f]) < 0) {
                PyErr_Format(PyExc_ValueError, "malformed packed refill: a non-hex digit at byte %zd", at + f * DIGITS);
                goto done;
            }
        }
        int64_t length = (int64_t)field[0];
        if (length < 0) {
            PyErr_Format(PyExc_ValueError, "malformed packed refill: body length %lld", (long long)length);
            goto done;
        }
        at += HEADER;
        if (length > size - at) {
            break; /* cut off by group_concat_max_len */
        }
        PyObject *job = ((PyTypeObject *)Reserved)->tp_alloc((PyTypeObject *)Reserved, 6);
        if (job == NULL) {
            goto done;
        }
        jobs[count].job = job; /* owned from here: freed below on failure */
        jobs[count].priority = (int64_t)field[1];
        jobs[count].run_after = (int64_t)field[2];
        jobs[count].local_id = field[3];
        count++;
        PyObject *items[6] = {
            PyLong_FromUnsignedLongLong(field[3]),
            PyLong_FromLongLong((int64_t)field[1]),
            PyLong_FromLongLong((int64_t)field[4]),
            PyLong_FromLongLong((int64_t)field[5]),
            PyLong_FromLongLong((int64_t)field[6]),
            PyBytes_FromStringAndSize((const char *)data + at, (Py_ssize_t)length),
        };
        int failed = 0;
        for (int k = 0; k < 6; k++) {
            if (items[k] == NULL) {
                failed = 1;
            }
            PyTuple_SET_ITEM(job, k, items[k]);
        }
        if (failed) {
            goto done;
        }
        at += (Py_ssize_t)length;
    }
    qsort(jobs, (size_t)count, sizeof(Unpacked), dispatch_order);
    out = PyList_New(count);
    if (out == NULL) {
        goto done;
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        PyList_SET_ITEM(out, i, jobs[i].job); /* the list takes the reference */
    }
    count = 0;
done:
    for (Py_ssize_t i = 0; i < count; i++) {
        Py_DECREF(jobs[i].job);
    }
    PyMem_Free(jobs);
    return out;
}

static PyMethodDef methods[] = {
    {"configure", (PyCFunction)(void (*)(void))configure, METH_FASTCALL,
     "configure(Lease, Descriptor, Reserved, lease_expiry): the classes made and the expiry's datetime."},
    {"leases", (PyCFunction)(void (*)(void))leases, METH_FASTCALL,
     "leases(jobs, expiries, epoch, queue, partition) -> the leases of the jobs with an expiry."},
    {"unpack_jobs", unpack_jobs, METH_O, "unpack_jobs(packed) -> the whole jobs of a packed refill, in dispatch order."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {PyModuleDef_HEAD_INIT, "pacer._speedups", NULL, -1, methods};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    struct {
        PyObject **slot;
        const char *text;
    } names[] = {
        {&s_queue, "queue"},
        {&s_partition, "partition"},
        {&s_priority, "priority"},
        {&s_local_id, "local_id"},
        {&s_descriptor, "descriptor"},
        {&s_body, "body"},
        {&s_claim, "claim"},
        {&s_attempts_allowed, "attempts_allowed"},
        {&s_attempts_remaining, "attempts_remaining"},
        {&s_lease_expires_at, "lease_expires_at"},
    };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        *names[i].slot = PyUnicode_InternFromString(names[i].text);
        if (*names[i].slot == NULL) {
            return NULL;
        }
    }
    empty_tuple = PyTuple_New(0);
    if (empty_tuple == NULL) {
        return NULL;
    }
    return PyModule_Create(&module_def);
}
