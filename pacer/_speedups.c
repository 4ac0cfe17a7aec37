/*
 * pacer._speedups: the per-job loops of a dequeue, in C (pacer/_fallback.py has the same in Python).
 *
 * configure(Lease, Descriptor, Reserved, AckItem, AckGroup, lease_expiry) names the classes to make and the
 * function that turns a lease's expiry (µs) into its datetime; the module keeps them.
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
 *
 * ack_groups(succeeded, failed, queue) groups a worker's acks by partition: {partition: AckGroup(descriptors,
 * items)}, an AckItem(local_id, claim, succeeded, "", 0) per ack. It takes the common call alone: lists (or
 * tuples) of Leases whose descriptors are Descriptors of `queue`. For any other it answers None, having changed
 * nothing and consumed nothing, and the caller goes the Python way (which parses and checks descriptors).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>

static PyObject *Lease, *Descriptor, *Reserved, *AckItem, *AckGroup, *lease_expiry;
static PyObject *s_queue, *s_partition, *s_priority, *s_local_id, *s_descriptor, *s_body, *s_claim,
    *s_attempts_allowed, *s_attempts_remaining, *s_lease_expires_at, *empty_tuple, *empty_str, *zero;

enum { FIELDS = 7, DIGITS = 16, HEADER = FIELDS * DIGITS };

static PyObject *
configure(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 6) {
        PyErr_SetString(PyExc_TypeError,
                        "configure takes 6 arguments: Lease, Descriptor, Reserved, AckItem, AckGroup, lease_expiry");
        return NULL;
    }
    for (int i = 0; i < 5; i++) {
        if (!PyType_Check(args[i]) || (i >= 2 && !PyType_IsSubtype((PyTypeObject *)args[i], &PyTuple_Type))) {
            PyErr_SetString(PyExc_TypeError, "configure: two classes, three tuple classes and a callable");
            return NULL;
        }
    }
    if (!PyCallable_Check(args[5])) {
        PyErr_SetString(PyExc_TypeError, "configure: lease_expiry must be callable");
        return NULL;
    }
    PyObject **slots[] = {&Lease, &Descriptor, &Reserved, &AckItem, &AckGroup, &lease_expiry};
    for (int i = 0; i < 6; i++) {
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

/* A new instance of a tuple class (a NamedTuple) holding the n items, whose references it steals; NULL items
 * (a failed allocation) are released with it. */
static PyObject *
made_tuple(PyObject *cls, PyObject **items, Py_ssize_t n)
{
    PyObject *made = ((PyTypeObject *)cls)->tp_alloc((PyTypeObject *)cls, n);
    int failed = made == NULL;
    for (Py_ssize_t k = 0; k < n; k++) {
        failed |= items[k] == NULL;
        if (made != NULL) {
            PyTuple_SET_ITEM(made, k, items[k]);
        } else {
            Py_XDECREF(items[k]);
        }
    }
    if (failed) {
        Py_XDECREF(made);
        return NULL;
    }
    return made;
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
        PyObject *items[6] = {
            PyLong_FromUnsignedLongLong(field[3]),
            PyLong_FromLongLong((int64_t)field[1]),
            PyLong_FromLongLong((int64_t)field[4]),
            PyLong_FromLongLong((int64_t)field[5]),
            PyLong_FromLongLong((int64_t)field[6]),
            PyBytes_FromStringAndSize((const char *)data + at, (Py_ssize_t)length),
        };
        PyObject *job = made_tuple(Reserved, items, 6);
        if (job == NULL) {
            goto done;
        }
        jobs[count].job = job; /* owned from here: freed below on failure */
        jobs[count].priority = (int64_t)field[1];
        jobs[count].run_after = (int64_t)field[2];
        jobs[count].local_id = field[3];
        count++;
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

/* Whether every ack of `acks` (a list or tuple) is a Lease of a Descriptor of `queue`: 1, 0, or -1 on an error. */
static int
common_acks(PyObject *acks, PyObject *queue)
{
    if (!PyList_CheckExact(acks) && !PyTuple_CheckExact(acks)) {
        return 0;
    }
    Py_ssize_t count = PySequence_Fast_GET_SIZE(acks);
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *ack = PySequence_Fast_GET_ITEM(acks, i);
        if (Py_TYPE(ack) != (PyTypeObject *)Lease) {
            return 0;
        }
        PyObject *descriptor = PyObject_GetAttr(ack, s_descriptor);
        if (descriptor == NULL) {
            return -1;
        }
        int ok = Py_TYPE(descriptor) == (PyTypeObject *)Descriptor;
        if (ok) {
            PyObject *of = PyObject_GetAttr(descriptor, s_queue);
            ok = of == NULL ? -1 : PyUnicode_Check(of) && PyUnicode_Compare(of, queue) == 0;
            Py_XDECREF(of);
        }
        Py_DECREF(descriptor);
        if (ok != 1) {
            return ok == -1 || PyErr_Occurred() ? -1 : 0;
        }
    }
    return 1;
}

/* Adds the acks of `acks` (checked by common_acks) to `groups`; -1 on an error. */
static int
group_acks(PyObject *groups, PyObject *acks, PyObject *succeeded)
{
    Py_ssize_t count = PySequence_Fast_GET_SIZE(acks);
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *ack = PySequence_Fast_GET_ITEM(acks, i);
        PyObject *descriptor = PyObject_GetAttr(ack, s_descriptor);
        PyObject *partition = descriptor == NULL ? NULL : PyObject_GetAttr(descriptor, s_partition);
        PyObject *group = partition == NULL ? NULL : PyDict_GetItemWithError(groups, partition); /* borrowed */
        if (partition == NULL || (group == NULL && PyErr_Occurred())) {
            goto fail;
        }
        if (group == NULL) {
            PyObject *lists[2] = {PyList_New(0), PyList_New(0)};
            group = made_tuple(AckGroup, lists, 2);
            if (group == NULL || PyDict_SetItem(groups, partition, group) < 0) {
                Py_XDECREF(group);
                goto fail;
            }
            Py_DECREF(group); /* the dict holds it */
        }
        PyObject *fields[5] = {PyObject_GetAttr(descriptor, s_local_id), PyObject_GetAttr(ack, s_claim), succeeded,
                               empty_str, zero};
        Py_INCREF(succeeded);
        Py_INCREF(empty_str);
        Py_INCREF(zero);
        PyObject *item = made_tuple(AckItem, fields, 5);
        if (item == NULL || PyList_Append(PyTuple_GET_ITEM(group, 0), descriptor) < 0 ||
            PyList_Append(PyTuple_GET_ITEM(group, 1), item) < 0) {
            Py_XDECREF(item);
            goto fail;
        }
        Py_DECREF(item);
        Py_DECREF(partition);
        Py_DECREF(descriptor);
        continue;
    fail:
        Py_XDECREF(partition);
        Py_XDECREF(descriptor);
        return -1;
    }
    return 0;
}

static PyObject *
ack_groups(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "ack_groups takes 3 arguments: succeeded, failed, queue");
        return NULL;
    }
    if (AckGroup == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "pacer._speedups.configure() was not called");
        return NULL;
    }
    if (!PyUnicode_Check(args[2])) {
        Py_RETURN_NONE;
    }
    for (int i = 0; i < 2; i++) {
        int common = common_acks(args[i], args[2]);
        if (common < 0) {
            return NULL;
        }
        if (!common) {
            Py_RETURN_NONE;
        }
    }
    PyObject *groups = PyDict_New();
    if (groups == NULL || group_acks(groups, args[0], Py_True) < 0 || group_acks(groups, args[1], Py_False) < 0) {
        Py_XDECREF(groups);
        return NULL;
    }
    return groups;
}

static PyMethodDef methods[] = {
    {"configure", (PyCFunction)(void (*)(void))configure, METH_FASTCALL,
     "configure(Lease, Descriptor, Reserved, lease_expiry): the classes made and the expiry's datetime."},
    {"leases", (PyCFunction)(void (*)(void))leases, METH_FASTCALL,
     "leases(jobs, expiries, epoch, queue, partition) -> the leases of the jobs with an expiry."},
    {"unpack_jobs", unpack_jobs, METH_O, "unpack_jobs(packed) -> the whole jobs of a packed refill, in dispatch order."},
    {"ack_groups", (PyCFunction)(void (*)(void))ack_groups, METH_FASTCALL,
     "ack_groups(succeeded, failed, queue) -> {partition: AckGroup} for lists of leases of the queue, else None."},
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
    empty_str = PyUnicode_New(0, 0);
    zero = PyLong_FromLong(0);
    if (empty_tuple == NULL || empty_str == NULL || zero == NULL) {
        return NULL;
    }
    return PyModule_Create(&module_def);
}
