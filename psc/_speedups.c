/*
 * psc._speedups: the per-record hot paths of the PSC clients, in C.
 *
 * A Python method in front of librdkafka's produce() or around each consumed record costs more than the
 * C call it wraps, so the common cases are answered here:
 *
 * - FastProduce: Producer.produce(topic_uri, ...) with confluent-kafka's arguments (partition, callback or
 *   on_delivery, timestamp, headers; positional or keyword) for a plain route (bytes serde, no
 *   interceptors, not due for a latency sample). Anything else, and any exception from the backend, goes to
 *   the Python implementation, which stays the specification.
 * - Report: the delivery report of such a record with a callback or headers: a success calls the
 *   callback with a Message (or only counts it, for a DeliveryTally), a failure goes to Python's remediation.
 * - DeliveryTally: a delivery callback that counts reports, so one object can serve a batch of records.
 * - RouteBase: the fields of a producer route FastProduce reads (psc._producer._Route extends it).
 * - FastPoll: Consumer.poll() for one cluster, served from the member's buffer; MemberBase holds the
 *   fields it reads (psc._consumer._Member extends it). An empty buffer, an error, serde or
 *   interceptors go to Python.
 * - Message: psc.Message itself, which reads everything from the native record and asks the client's
 *   Source for the rest, and wrap_batch(), which wraps a consumed batch in one call.
 *
 * psc/_fallback.py implements the same names in Python for builds without a C compiler.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>

#include "_tally.h"

static PyTypeObject Message_Type;
static PyObject *message_new(PyTypeObject *type, PyObject *native, PyObject *source);
static PyObject *str_error, *str_partition, *str_offset, *str_timestamp, *str_key, *str_value, *str_headers,
    *str_topic, *str_topic_uri, *str_is_eof, *str_leader_epoch, *str_latency, *str_message_id, *str_callback,
    *str_on_delivery;
static PyObject *minus_one, *zero;                           /* produce()'s default partition and timestamp */
static PyObject *kw_timestamp, *kw_headers, *kw_timestamp_headers; /* keyword names of a backend call */

/* --- RouteBase ------------------------------------------------------------------------------------- */

typedef struct {
    PyObject_HEAD
    PyObject *produce;   /* the backend's produce(topic, value, key, partition, on_delivery, ...) */
    PyObject *topic;     /* the backend's topic name */
    PyObject *source;    /* psc._message.Source of the route's backend producer: wraps delivered records */
    long long count;     /* records sent to this route */
    long long sample_at; /* the count whose record is sampled for produce latency (by Python) */
    char plain;          /* bytes serde and no interceptors: records go to the backend as given */
    char keep_headers;   /* records with headers keep them in a Report until delivered, for remediation's
                          * re-produce: remediation is on and the backend's failure reports lack headers */
} RouteBase;

static int
RouteBase_traverse(RouteBase *self, visitproc visit, void *arg)
{
    Py_VISIT(self->produce);
    Py_VISIT(self->topic);
    Py_VISIT(self->source);
    return 0;
}

static int
RouteBase_clear(RouteBase *self)
{
    Py_CLEAR(self->produce);
    Py_CLEAR(self->topic);
    Py_CLEAR(self->source);
    return 0;
}

static void
RouteBase_dealloc(RouteBase *self)
{
    PyTypeObject *type = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    RouteBase_clear(self);
    type->tp_free((PyObject *)self); /* a subclass's dealloc releases its heap type */
}

static PyMemberDef RouteBase_members[] = {
    {"produce", T_OBJECT, offsetof(RouteBase, produce), 0, "the backend's produce(topic, value, key, ...)"},
    {"topic", T_OBJECT, offsetof(RouteBase, topic), 0, "the backend's topic name"},
    {"source", T_OBJECT, offsetof(RouteBase, source), 0, "the Source that wraps the route's delivered records"},
    {"count", T_LONGLONG, offsetof(RouteBase, count), 0, "records sent to this route"},
    {"sample_at", T_LONGLONG, offsetof(RouteBase, sample_at), 0, "the count of the next sampled record"},
    {"plain", T_BOOL, offsetof(RouteBase, plain), 0, "bytes serde and no interceptors"},
    {"keep_headers", T_BOOL, offsetof(RouteBase, keep_headers), 0, "records with headers keep them until delivered"},
    {NULL},
};

static PyTypeObject RouteBase_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "psc._speedups.RouteBase",
    .tp_doc = "The fields of a producer route that FastProduce reads.",
    .tp_basicsize = sizeof(RouteBase),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_new = PyType_GenericNew,
    .tp_dealloc = (destructor)RouteBase_dealloc,
    .tp_traverse = (traverseproc)RouteBase_traverse,
    .tp_clear = (inquiry)RouteBase_clear,
    .tp_members = RouteBase_members,
};

/* --- DeliveryTally ------------------------------------------------------------------------------- */

/* DeliveryTally's struct is in _tally.h. A Report counts the successes of a tally that keeps its __call__
 * without building a Message or calling Python: one tally can serve a whole batch of records. */

static PyObject *str_failed;

static int
DeliveryTally_init(DeliveryTally *self, PyObject *args, PyObject *kwds)
{
    Py_ssize_t pending = 0;
    static char *kwlist[] = {"pending", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|n:DeliveryTally", kwlist, &pending)) {
        return -1;
    }
    self->pending = pending;
    self->acked = 0;
    return 0;
}

static void
DeliveryTally_dealloc(DeliveryTally *self)
{
    Py_CLEAR(self->kept);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *
DeliveryTally_call(DeliveryTally *self, PyObject *args, PyObject *kwds)
{
    PyObject *err, *msg;
    if ((kwds != NULL && PyDict_GET_SIZE(kwds) != 0) || !PyArg_ParseTuple(args, "OO:DeliveryTally", &err, &msg)) {
        if (!PyErr_Occurred()) {
            PyErr_SetString(PyExc_TypeError, "a delivery report takes (err, msg)");
        }
        return NULL;
    }
    self->pending--;
    if (err == Py_None) {
        self->acked++;
        Py_RETURN_NONE;
    }
    return PyObject_CallMethodObjArgs((PyObject *)self, str_failed, err, msg, NULL);
}

static PyObject *
DeliveryTally_failed(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    Py_RETURN_NONE;
}

static PyMethodDef DeliveryTally_methods[] = {
    {"failed", (PyCFunction)(void (*)(void))DeliveryTally_failed, METH_FASTCALL,
     "failed(err, msg): one record's delivery failed; does nothing unless overridden."},
    {NULL},
};

static PyMemberDef DeliveryTally_members[] = {
    {"pending", T_PYSSIZET, offsetof(DeliveryTally, pending), 0, "reports still expected"},
    {"acked", T_PYSSIZET, offsetof(DeliveryTally, acked), 0, "successful reports"},
    {NULL},
};

static PyTypeObject DeliveryTally_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "psc.DeliveryTally",
    .tp_doc = "DeliveryTally(pending=0): a delivery callback counting reports; failures go to failed(err, msg).",
    .tp_basicsize = sizeof(DeliveryTally),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)DeliveryTally_init,
    .tp_dealloc = (destructor)DeliveryTally_dealloc,
    .tp_call = (ternaryfunc)DeliveryTally_call,
    .tp_methods = DeliveryTally_methods,
    .tp_members = DeliveryTally_members,
};

/* A tally whose __call__ is ours: its successes can be counted here, without a call. */
static inline int
is_plain_tally(PyObject *callback)
{
    return PyObject_TypeCheck(callback, &DeliveryTally_Type) &&
           Py_TYPE(callback)->tp_call == (ternaryfunc)DeliveryTally_call;
}

/* --- Report ---------------------------------------------------------------------------------------- */

/* The delivery report of a fast-path record that has a callback or headers to keep, as the backend calls
 * it: report(err, native). A success calls callback(None, Message(native, route.source)); a failure goes to
 * failed(route, callback, headers, err, native), Python's remediation, which may re-produce the record
 * (with its headers: delivery reports do not carry them) before the callback hears of it.
 *
 * Not tracked by the cycle collector: a report lives in the backend's queue until its record is delivered,
 * and tens of thousands of queued tracked objects make every collection walk them all (a partial() here cost
 * microseconds per record). Nothing leads from what it holds back to it: only the backend refers to it. */
typedef struct {
    PyObject_HEAD
    PyObject *route;    /* RouteBase */
    PyObject *callback; /* or None */
    PyObject *headers;  /* or None */
    PyObject *failed;   /* failed(route, callback, headers, err, native) */
    vectorcallfunc vectorcall;
} Report;

static PyTypeObject Report_Type;

static PyObject *
Report_vectorcall(Report *self, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    if (PyVectorcall_NARGS(nargsf) != 2 || kwnames != NULL) {
        PyErr_SetString(PyExc_TypeError, "a delivery report takes (err, msg)");
        return NULL;
    }
    if (args[0] != Py_None) {
        PyObject *call[5] = {self->route, self->callback, self->headers, args[0], args[1]};
        return PyObject_Vectorcall(self->failed, call, 5, NULL);
    }
    if (self->callback == Py_None) {
        Py_RETURN_NONE;
    }
    if (is_plain_tally(self->callback)) {
        ((DeliveryTally *)self->callback)->pending--;
        ((DeliveryTally *)self->callback)->acked++;
        Py_RETURN_NONE;
    }
    PyObject *source = ((RouteBase *)self->route)->source;
    if (source == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "the route of a delivery report has no source");
        return NULL;
    }
    PyObject *message = message_new(&Message_Type, args[1], source);
    if (message == NULL) {
        return NULL;
    }
    PyObject *call[2] = {Py_None, message};
    PyObject *result = PyObject_Vectorcall(self->callback, call, 2, NULL);
    Py_DECREF(message);
    if (result == NULL) {
        return NULL;
    }
    Py_DECREF(result);
    Py_RETURN_NONE;
}

static PyObject *
report_new(PyObject *route, PyObject *callback, PyObject *headers, PyObject *failed)
{
    Report *self = PyObject_New(Report, &Report_Type);
    if (self != NULL) {
        self->route = Py_NewRef(route);
        self->callback = Py_NewRef(callback);
        self->headers = Py_NewRef(headers);
        self->failed = Py_NewRef(failed);
        self->vectorcall = (vectorcallfunc)Report_vectorcall;
    }
    return (PyObject *)self;
}

static PyObject *
Report_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    PyObject *route, *callback, *headers, *failed;
    static char *kwlist[] = {"route", "callback", "headers", "failed", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O!OOO:Report", kwlist, &RouteBase_Type, &route, &callback,
                                     &headers, &failed)) {
        return NULL;
    }
    return report_new(route, callback, headers, failed);
}

static void
Report_dealloc(Report *self)
{
    Py_CLEAR(self->route);
    Py_CLEAR(self->callback);
    Py_CLEAR(self->headers);
    Py_CLEAR(self->failed);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMemberDef Report_members[] = {
    {"route", T_OBJECT, offsetof(Report, route), READONLY, "the route the record was sent to"},
    {"callback", T_OBJECT, offsetof(Report, callback), READONLY, "the application's callback, or None"},
    {"headers", T_OBJECT, offsetof(Report, headers), READONLY, "the record's headers, kept for a re-produce"},
    {"failed", T_OBJECT, offsetof(Report, failed), READONLY, "failed(route, callback, headers, err, native)"},
    {NULL},
};

static PyTypeObject Report_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "psc._speedups.Report",
    .tp_doc = "Report(route, callback, headers, failed): the delivery report of a fast-path record.",
    .tp_basicsize = sizeof(Report),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_new = Report_new,
    .tp_dealloc = (destructor)Report_dealloc,
    .tp_call = PyVectorcall_Call,
    .tp_vectorcall_offset = offsetof(Report, vectorcall),
    .tp_members = Report_members,
};

/* --- FastProduce ----------------------------------------------------------------------------------- */

typedef struct {
    PyObject_HEAD
    PyObject *routes;   /* dict: topic URI -> RouteBase */
    PyObject *slow;     /* the Python produce(), called with the same arguments */
    PyObject *on_error; /* on_error(route, value, key, exc, partition, timestamp, callback, headers) */
    PyObject *failed;   /* given to each Report: a failed delivery */
    /* The last topic object produced to and its route: a producer usually sends to one topic with the same
     * string object, so an identity check saves the dict lookup. Python calls forget() whenever it changes
     * routes. Both are strong references, or both NULL. */
    PyObject *last_topic;
    PyObject *last_route; /* a RouteBase: only routes of that type are cached */
    /* Argument tuples of 2 and 3 items for the backend's produce, reused from call to call as zip() reuses
     * its result, when the backend kept no reference; NULL items between calls, so no record is kept. */
    PyObject *call_args[4];
    vectorcallfunc vectorcall;
} FastProduce;

/* confluent-kafka's produce(topic, value=None, key=None, partition=-1, callback=None, on_delivery=None,
 * timestamp=0, headers=None). */
enum { A_TOPIC, A_VALUE, A_KEY, A_PARTITION, A_CALLBACK, A_ON_DELIVERY, A_TIMESTAMP, A_HEADERS, N_PRODUCE_ARGS };
static PyObject **produce_names[N_PRODUCE_ARGS] = {&str_topic,    &str_value,       &str_key,
                                                   &str_partition, &str_callback,   &str_on_delivery,
                                                   &str_timestamp, &str_headers};

/* Fills slots[] from a call; 0 when the call is not one produce() accepts (Python then raises). */
static int
parse_produce(PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames, PyObject **slots)
{
    if (nargs > N_PRODUCE_ARGS) {
        return 0;
    }
    for (Py_ssize_t i = 0; i < nargs; i++) {
        slots[i] = args[i];
    }
    Py_ssize_t nkw = kwnames == NULL ? 0 : PyTuple_GET_SIZE(kwnames);
    for (Py_ssize_t j = 0; j < nkw; j++) {
        PyObject *name = PyTuple_GET_ITEM(kwnames, j);
        int slot = -1;
        for (int i = 0; i < N_PRODUCE_ARGS && slot < 0; i++) {
            if (name == *produce_names[i]) { /* keyword names are interned by the compiler */
                slot = i;
            }
        }
        for (int i = 0; i < N_PRODUCE_ARGS && slot < 0; i++) {
            if (PyUnicode_Compare(name, *produce_names[i]) == 0) {
                slot = i;
            }
        }
        if (slot < 0 || slots[slot] != NULL) {
            return 0;
        }
        slots[slot] = args[nargs + j];
    }
    return slots[A_TOPIC] != NULL;
}

/* The callback Python's produce() would use: `on_delivery or callback` (the route is plain, so there is no
 * default on_delivery). 0 when either is neither None nor callable: Python decides what that means. */
static int
pick_callback(PyObject **slots, PyObject **callback)
{
    *callback = NULL;
    PyObject *given[2] = {slots[A_ON_DELIVERY], slots[A_CALLBACK]};
    for (int i = 0; i < 2; i++) {
        if (given[i] == NULL || given[i] == Py_None) {
            continue;
        }
        if (!PyCallable_Check(given[i])) {
            return 0;
        }
        int truth = PyObject_IsTrue(given[i]);
        if (truth < 0) {
            PyErr_Clear();
            return 0;
        }
        if (truth && *callback == NULL) {
            *callback = given[i];
        }
    }
    return 1;
}

static int
is_minus_one(PyObject *partition)
{
    int overflow;
    return partition == NULL || (PyLong_AsLongAndOverflow(partition, &overflow) == -1 && !overflow);
}

/* The backend's produce(*call, **names). confluent-kafka's produce is a bound C method taking a tuple: it is
 * called through its function pointer with a reused tuple, which skips the generic call's dispatch, checks and
 * tuple allocation. So a record sent through PSC costs the calling thread no more than one sent with
 * confluent-kafka's own produce from Python, which pays them. */
static inline PyObject *
call_backend(FastProduce *self, PyObject *produce, PyObject *const *call, Py_ssize_t ncall, PyObject *names)
{
    if (names != NULL || ncall > 3 || !Py_IS_TYPE(produce, &PyCFunction_Type) ||
        PyCFunction_GET_FLAGS(produce) != (METH_VARARGS | METH_KEYWORDS)) {
        return PyObject_Vectorcall(produce, call, (size_t)ncall, names);
    }
    PyObject *tuple = self->call_args[ncall]; /* taken out while in use: a nested call makes its own */
    self->call_args[ncall] = NULL;
    if (tuple == NULL && (tuple = PyTuple_New(ncall)) == NULL) {
        return NULL;
    }
    for (Py_ssize_t i = 0; i < ncall; i++) {
        PyTuple_SET_ITEM(tuple, i, Py_NewRef(call[i]));
    }
    PyCFunctionWithKeywords meth = (PyCFunctionWithKeywords)(void (*)(void))PyCFunction_GET_FUNCTION(produce);
    PyObject *result = meth(PyCFunction_GET_SELF(produce), tuple, NULL);
    if (result == NULL && !PyErr_Occurred()) {
        PyErr_SetString(PyExc_SystemError, "the backend's produce failed without an exception");
    }
    if (Py_REFCNT(tuple) > 1 || self->call_args[ncall] != NULL) {
        Py_DECREF(tuple); /* kept by the backend, or replaced by a nested call */
        return result;
    }
    for (Py_ssize_t i = 0; i < ncall; i++) {
        PyObject *item = PyTuple_GET_ITEM(tuple, i);
        PyTuple_SET_ITEM(tuple, i, NULL);
        Py_DECREF(item);
    }
    self->call_args[ncall] = tuple;
    return result;
}

/* The backend refused a record (BufferError when the queue is full, or a failed client): Python waits,
 * remediates or raises. Steals nothing; ``found`` is the route, kept alive by the caller. */
static PyObject *
produce_refused(FastProduce *self, PyObject *found, PyObject *value, PyObject *key, PyObject *partition,
                PyObject *timestamp, PyObject *callback, PyObject *headers)
{
    PyObject *type, *exc, *traceback;
    PyErr_Fetch(&type, &exc, &traceback);
    PyErr_NormalizeException(&type, &exc, &traceback);
    if (traceback != NULL) {
        PyException_SetTraceback(exc, traceback);
    }
    PyObject *handler_args[8] = {found,
                                 value,
                                 key,
                                 exc,
                                 partition ? partition : minus_one,
                                 timestamp ? timestamp : zero,
                                 callback ? callback : Py_None,
                                 headers ? headers : Py_None};
    PyObject *handled = PyObject_Vectorcall(self->on_error, handler_args, 8, NULL);
    Py_XDECREF(type);
    Py_XDECREF(exc);
    Py_XDECREF(traceback);
    return handled;
}

static PyObject *
FastProduce_vectorcall(FastProduce *self, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    /* The common call: produce(topic, value) or produce(topic, value, key) to the route of the last call,
     * with nothing to parse. A key of None is dropped, as below. */
    if (kwnames == NULL && (nargs == 2 || nargs == 3) && args[0] == self->last_topic) {
        RouteBase *route = (RouteBase *)self->last_route;
        if (route->plain && route->produce != NULL && route->topic != NULL && route->count + 1 != route->sample_at) {
            PyObject *found = Py_NewRef(self->last_route); /* the backend call may run code that drops it */
            PyObject *call[3] = {route->topic, args[1], nargs == 3 ? args[2] : Py_None};
            route->count++;
            PyObject *result = call_backend(self, route->produce, call, call[2] == Py_None ? 2 : 3, NULL);
            if (result != NULL) {
                Py_DECREF(found);
                Py_DECREF(result);
                Py_RETURN_NONE;
            }
            PyObject *handled = produce_refused(self, found, call[1], call[2], NULL, NULL, NULL, NULL);
            Py_DECREF(found);
            return handled;
        }
    }
    PyObject *slots[N_PRODUCE_ARGS] = {NULL};
    PyObject *callback;
    if (!parse_produce(args, nargs, kwnames, slots) || !pick_callback(slots, &callback)) {
        return PyObject_Vectorcall(self->slow, args, nargsf, kwnames);
    }
    PyObject *partition = slots[A_PARTITION], *timestamp = slots[A_TIMESTAMP], *headers = slots[A_HEADERS];
    if ((partition != NULL && !PyLong_CheckExact(partition)) || (timestamp != NULL && !PyLong_CheckExact(timestamp))) {
        return PyObject_Vectorcall(self->slow, args, nargsf, kwnames);
    }
    if (headers == Py_None) {
        headers = NULL;
    }
    PyObject *found; /* borrowed */
    if (slots[A_TOPIC] == self->last_topic) {
        found = self->last_route;
    }
    else {
        found = PyDict_GetItemWithError(self->routes, slots[A_TOPIC]);
        if (found == NULL || !PyObject_TypeCheck(found, &RouteBase_Type)) {
            PyErr_Clear(); /* an unhashable URI: the Python path reports it */
            return PyObject_Vectorcall(self->slow, args, nargsf, kwnames);
        }
        Py_XSETREF(self->last_route, Py_NewRef(found));
        Py_XSETREF(self->last_topic, Py_NewRef(slots[A_TOPIC]));
    }
    RouteBase *route = (RouteBase *)found;
    if (!route->plain || route->produce == NULL ||
        route->topic == NULL || route->count + 1 == route->sample_at ||
        ((callback != NULL || headers != NULL) && route->source == NULL)) {
        return PyObject_Vectorcall(self->slow, args, nargsf, kwnames);
    }
    Py_INCREF(found); /* borrowed from the dict; the backend call may run Python code that drops the route */
    PyObject *value = slots[A_VALUE] ? slots[A_VALUE] : Py_None, *key = slots[A_KEY] ? slots[A_KEY] : Py_None;
    PyObject *report = NULL;
    if (callback != NULL || (headers != NULL && route->keep_headers)) {
        /* Headers are kept only for remediation's re-produce: without it they would only hold memory. */
        PyObject *kept = headers && route->keep_headers ? headers : Py_None;
        report = report_new(found, callback ? callback : Py_None, kept, self->failed);
        if (report == NULL) {
            Py_DECREF(found);
            return NULL;
        }
    }
    /* The backend call: positional (topic, value), and key when there is one, for a record with nothing
     * else (each argument is parsed again by the backend); else (topic, value, key, partition, on_delivery)
     * with timestamp= and headers= when given. */
    PyObject *call[7] = {route->topic, value, key, partition ? partition : minus_one, report ? report : Py_None};
    size_t ncall = key == Py_None ? 2 : 3;
    PyObject *names = NULL;
    if (report != NULL || headers != NULL || !is_minus_one(partition) ||
        (timestamp != NULL && PyObject_IsTrue(timestamp))) {
        ncall = 5;
        if (timestamp != NULL && headers != NULL) {
            call[5] = timestamp;
            call[6] = headers;
            names = kw_timestamp_headers;
        }
        else if (timestamp != NULL) {
            call[5] = timestamp;
            names = kw_timestamp;
        }
        else if (headers != NULL) {
            call[5] = headers;
            names = kw_headers;
        }
    }
    route->count++;
    PyObject *result = call_backend(self, route->produce, call, (Py_ssize_t)ncall, names);
    Py_XDECREF(report); /* the backend holds its own reference until the record is delivered */
    if (result != NULL) {
        Py_DECREF(found);
        Py_DECREF(result);
        Py_RETURN_NONE;
    }
    PyObject *handled = produce_refused(self, found, value, key, partition, timestamp, callback, headers);
    Py_DECREF(found);
    return handled;
}

static PyObject *
FastProduce_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    PyObject *routes, *slow, *on_error, *failed;
    static char *kwlist[] = {"routes", "slow", "on_error", "failed", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O!OOO:FastProduce", kwlist, &PyDict_Type, &routes, &slow,
                                     &on_error, &failed)) {
        return NULL;
    }
    FastProduce *self = (FastProduce *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    self->routes = Py_NewRef(routes);
    self->slow = Py_NewRef(slow);
    self->on_error = Py_NewRef(on_error);
    self->failed = Py_NewRef(failed);
    self->vectorcall = (vectorcallfunc)FastProduce_vectorcall;
    return (PyObject *)self;
}

static int
FastProduce_traverse(FastProduce *self, visitproc visit, void *arg)
{
    Py_VISIT(self->routes);
    Py_VISIT(self->slow);
    Py_VISIT(self->on_error);
    Py_VISIT(self->failed);
    Py_VISIT(self->last_topic);
    Py_VISIT(self->last_route);
    for (int i = 0; i < 4; i++) {
        Py_VISIT(self->call_args[i]);
    }
    return 0;
}

static int
FastProduce_clear(FastProduce *self)
{
    Py_CLEAR(self->routes);
    Py_CLEAR(self->slow);
    Py_CLEAR(self->on_error);
    Py_CLEAR(self->failed);
    Py_CLEAR(self->last_topic);
    Py_CLEAR(self->last_route);
    for (int i = 0; i < 4; i++) {
        Py_CLEAR(self->call_args[i]);
    }
    return 0;
}

static PyObject *
FastProduce_forget(FastProduce *self, PyObject *Py_UNUSED(ignored))
{
    Py_CLEAR(self->last_topic);
    Py_CLEAR(self->last_route);
    Py_RETURN_NONE;
}

static PyMethodDef FastProduce_methods[] = {
    {"forget", (PyCFunction)FastProduce_forget, METH_NOARGS, "forget(): drop the cached route; routes changed."},
    {NULL, NULL, 0, NULL},
};

static void
FastProduce_dealloc(FastProduce *self)
{
    PyObject_GC_UnTrack(self);
    FastProduce_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyTypeObject FastProduce_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "psc._speedups.FastProduce",
    .tp_doc = "FastProduce(routes, slow, on_error, failed): Producer.produce for plain routes, in C.",
    .tp_basicsize = sizeof(FastProduce),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_new = FastProduce_new,
    .tp_dealloc = (destructor)FastProduce_dealloc,
    .tp_traverse = (traverseproc)FastProduce_traverse,
    .tp_clear = (inquiry)FastProduce_clear,
    .tp_methods = FastProduce_methods,
    .tp_call = PyVectorcall_Call,
    .tp_vectorcall_offset = offsetof(FastProduce, vectorcall),
};

/* --- Message -------------------------------------------------------------------------------------- */

/* psc.Message. Not tracked by the cycle collector: nothing it holds (a native record, the client's Source)
 * leads back to it, and a consumer's batch of tracked wrappers would double the allocations that trigger
 * collections, which then cost more than the wrapping. Its subclass DecodedMessage is tracked. */
typedef struct {
    PyObject_HEAD
    PyObject *native; /* the backend's record */
    PyObject *source; /* psc._message.Source: what the message needs from the client that received it */
    int clean;        /* the native record was seen to carry no error: error() need not ask it again */
} Message;

/* A method of the native records, called without arguments. A backend's records are instances of one
 * static type (cimpl.Message for Kafka), whose methods cannot change, so its descriptor is looked up once
 * rather than on every call. */
typedef struct {
    PyObject **name;
    PyTypeObject *type; /* the static type whose descriptor is cached: it is never freed */
    PyObject *descr;
    PyCFunction noargs; /* the descriptor's C function when it takes no arguments: called directly */
} NativeMethod;

static NativeMethod native_error = {&str_error}, native_partition = {&str_partition},
                    native_offset = {&str_offset}, native_timestamp = {&str_timestamp}, native_key = {&str_key},
                    native_value = {&str_value}, native_headers = {&str_headers}, native_topic = {&str_topic},
                    native_leader_epoch = {&str_leader_epoch}, native_latency = {&str_latency};

static PyObject *
call_native(PyObject *native, NativeMethod *method)
{
    PyTypeObject *type = Py_TYPE(native);
    if (type != method->type) {
        if (type->tp_flags & Py_TPFLAGS_HEAPTYPE || type->tp_dictoffset != 0) {
            return PyObject_CallMethodNoArgs(native, *method->name); /* its methods may change */
        }
        PyObject *descr = PyObject_GetAttr((PyObject *)type, *method->name);
        if (descr == NULL) {
            return NULL;
        }
        if (!Py_IS_TYPE(descr, &PyMethodDescr_Type)) {
            Py_DECREF(descr);
            return PyObject_CallMethodNoArgs(native, *method->name);
        }
        Py_XSETREF(method->descr, descr);
        method->type = type;
        PyMethodDef *def = ((PyMethodDescrObject *)descr)->d_method;
        method->noargs = (def->ml_flags & ~METH_COEXIST) == METH_NOARGS ? def->ml_meth : NULL;
    }
    if (method->noargs != NULL) {
        /* What the descriptor's own call does for METH_NOARGS, less its checks: the type is known, and a
         * static type's accessor calls no Python code, so there is no recursion to guard. */
        return method->noargs(native, NULL);
    }
    return PyObject_Vectorcall(method->descr, &native, 1, NULL);
}

/* Freed psc.Message objects kept for reuse: a consumer wraps and drops hundreds per batch, and taking one
 * from here costs less than the allocator's round trip. Only the exact type: subclasses are tracked. */
#define MESSAGE_FREELIST_MAX 4096
static Message *message_freelist[MESSAGE_FREELIST_MAX];
static int message_freelist_len = 0;

static PyObject *
message_new(PyTypeObject *type, PyObject *native, PyObject *source)
{
    Message *self;
    if (type != &Message_Type) {
        self = (Message *)type->tp_alloc(type, 0);
    }
    else if (message_freelist_len > 0) {
        self = message_freelist[--message_freelist_len];
        PyObject_Init((PyObject *)self, &Message_Type);
    }
    else {
        self = PyObject_New(Message, type);
    }
    if (self != NULL) {
        self->native = Py_NewRef(native);
        self->source = Py_NewRef(source);
        self->clean = 0;
    }
    return (PyObject *)self;
}

static PyObject *
Message_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    PyObject *native, *source;
    static char *kwlist[] = {"native", "source", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OO:Message", kwlist, &native, &source)) {
        return NULL;
    }
    return message_new(type, native, source);
}

static void
Message_dealloc(Message *self)
{
    Py_CLEAR(self->native);
    Py_CLEAR(self->source);
    if (Py_IS_TYPE(self, &Message_Type) && message_freelist_len < MESSAGE_FREELIST_MAX) {
        message_freelist[message_freelist_len++] = self;
        return;
    }
    Py_TYPE(self)->tp_free((PyObject *)self);
}

#define FORWARD(name)                                                          \
    static PyObject *Message_##name(Message *self, PyObject *unused)           \
    {                                                                          \
        return call_native(self->native, &native_##name);                     \
    }
FORWARD(partition)
FORWARD(offset)
FORWARD(timestamp)
FORWARD(key)
FORWARD(value)
FORWARD(headers)
FORWARD(leader_epoch)
FORWARD(latency)
#undef FORWARD

static PyObject *
Message_error(Message *self, PyObject *unused)
{
    if (self->clean) {
        Py_RETURN_NONE; /* a consumed record's error never changes */
    }
    return call_native(self->native, &native_error); /* the native KafkaError itself, as confluent-kafka's */
}

#define ASK_SOURCE(name)                                                       \
    static PyObject *Message_##name(Message *self, PyObject *unused)           \
    {                                                                          \
        return PyObject_CallMethodOneArg(self->source, str_##name, self->native); \
    }
ASK_SOURCE(is_eof)
ASK_SOURCE(message_id)
#undef ASK_SOURCE

static PyObject *
Message_topic(Message *self, PyObject *unused)
{
    PyObject *topic = call_native(self->native, &native_topic);
    if (topic == NULL) {
        return NULL;
    }
    PyObject *uri = PyObject_CallMethodOneArg(self->source, str_topic_uri, topic);
    Py_DECREF(topic);
    return uri;
}

static PyObject *
Message_get_topic_uri(Message *self, void *closure)
{
    return Message_topic(self, NULL);
}

static PyObject *
Message_get_message_id(Message *self, void *closure)
{
    return Message_message_id(self, NULL);
}

static PyObject *
Message_get_native(Message *self, void *closure)
{
    return Py_NewRef(self->native);
}

static Py_ssize_t
Message_length(Message *self)
{
    PyObject *value = call_native(self->native, &native_value); /* the size on the wire */
    if (value == NULL) {
        return -1;
    }
    Py_ssize_t length = value == Py_None ? 0 : PyObject_Length(value);
    Py_DECREF(value);
    return length;
}

static PyObject *
Message_repr(Message *self)
{
    PyObject *topic = Message_topic(self, NULL);
    PyObject *partition = topic ? Message_partition(self, NULL) : NULL;
    PyObject *offset = partition ? Message_offset(self, NULL) : NULL;
    PyObject *repr = offset ? PyUnicode_FromFormat("Message(topic_uri=%R, partition=%S, offset=%S)", topic,
                                                   partition, offset)
                            : NULL;
    Py_XDECREF(topic);
    Py_XDECREF(partition);
    Py_XDECREF(offset);
    return repr;
}

static PyMethodDef Message_methods[] = {
    {"topic", (PyCFunction)Message_topic, METH_NOARGS, "The topic URI."},
    {"partition", (PyCFunction)Message_partition, METH_NOARGS, "The partition."},
    {"offset", (PyCFunction)Message_offset, METH_NOARGS, "The offset."},
    {"timestamp", (PyCFunction)Message_timestamp, METH_NOARGS, "(timestamp type, ms since the epoch)."},
    {"key", (PyCFunction)Message_key, METH_NOARGS, "The key."},
    {"value", (PyCFunction)Message_value, METH_NOARGS, "The value."},
    {"headers", (PyCFunction)Message_headers, METH_NOARGS, "The headers: a list of (name, value), or None."},
    {"error", (PyCFunction)Message_error, METH_NOARGS, "The KafkaError the record carries, or None."},
    {"leader_epoch", (PyCFunction)Message_leader_epoch, METH_NOARGS, "The partition leader epoch, or None."},
    {"latency", (PyCFunction)Message_latency, METH_NOARGS, "A produced record's delivery latency in s, or None."},
    {"is_eof", (PyCFunction)Message_is_eof, METH_NOARGS,
     "True for the end-of-partition marker returned when enable.partition.eof is set."},
    {NULL},
};

static PyGetSetDef Message_getset[] = {
    {"topic_uri", (getter)Message_get_topic_uri, NULL, "The topic URI.", NULL},
    {"message_id", (getter)Message_get_message_id, NULL, "MessageId(topic_uri, partition, offset, timestamp).",
     NULL},
    {"native", (getter)Message_get_native, NULL, "The backend's own record, for what PSC does not expose.", NULL},
    {NULL},
};

static PyMemberDef Message_members[] = {
    {"_native", T_OBJECT, offsetof(Message, native), READONLY, "the backend's record"},
    {"_source", T_OBJECT, offsetof(Message, source), READONLY, "what the message needs from its client"},
    {NULL},
};

static PySequenceMethods Message_as_sequence = {
    .sq_length = (lenfunc)Message_length,
};

static PyTypeObject Message_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "psc.Message",
    .tp_doc = "A consumed (or delivered) message; the accessors mirror confluent_kafka.Message.\n\n"
              "key()/value() return the deserialized key and value; topic() returns the topic URI.",
    .tp_basicsize = sizeof(Message),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .tp_new = Message_new,
    .tp_dealloc = (destructor)Message_dealloc,
    .tp_repr = (reprfunc)Message_repr,
    .tp_methods = Message_methods,
    .tp_getset = Message_getset,
    .tp_members = Message_members,
    .tp_as_sequence = &Message_as_sequence,
};

/* --- MemberBase and FastPoll ---------------------------------------------------------------------- */

typedef struct {
    PyObject_HEAD
    PyObject *buffer;    /* list: records fetched but not yet returned, the next one last */
    PyObject *source;    /* psc._message.Source of the member's cluster */
    long long countdown; /* records until the next tick */
    char slow;           /* records go through the general path */
} MemberBase;

static int
MemberBase_traverse(MemberBase *self, visitproc visit, void *arg)
{
    Py_VISIT(self->buffer);
    Py_VISIT(self->source);
    return 0;
}

static int
MemberBase_clear(MemberBase *self)
{
    Py_CLEAR(self->buffer);
    Py_CLEAR(self->source);
    return 0;
}

static void
MemberBase_dealloc(MemberBase *self)
{
    PyObject_GC_UnTrack(self);
    MemberBase_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMemberDef MemberBase_members[] = {
    {"buffer", T_OBJECT, offsetof(MemberBase, buffer), 0, "records fetched but not yet returned, next last"},
    {"source", T_OBJECT, offsetof(MemberBase, source), 0, "the Source of the member's cluster"},
    {"countdown", T_LONGLONG, offsetof(MemberBase, countdown), 0, "records until the next tick"},
    {"slow", T_BOOL, offsetof(MemberBase, slow), 0, "records go through the general path"},
    {NULL},
};

static PyTypeObject MemberBase_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "psc._speedups.MemberBase",
    .tp_doc = "The fields of a consumer member that FastPoll reads.",
    .tp_basicsize = sizeof(MemberBase),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_new = PyType_GenericNew,
    .tp_dealloc = (destructor)MemberBase_dealloc,
    .tp_traverse = (traverseproc)MemberBase_traverse,
    .tp_clear = (inquiry)MemberBase_clear,
    .tp_members = MemberBase_members,
};

typedef struct {
    PyObject_HEAD
    PyObject *member; /* the only member (a MemberBase), or NULL/None: every call goes to slow */
    PyObject *slow;   /* the Python poll(), called with the same arguments */
    PyObject *rare;   /* rare(timeout, member, native): a record the fast path does not take */
    PyObject *tick;   /* tick(member, native): every so many records */
    vectorcallfunc vectorcall;
} FastPoll;

static PyObject *
FastPoll_vectorcall(FastPoll *self, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    PyObject *found = self->member;
    if (kwnames != NULL || nargs > 1 || found == NULL || !PyObject_TypeCheck(found, &MemberBase_Type)) {
        return PyObject_Vectorcall(self->slow, args, nargsf, kwnames);
    }
    MemberBase *member = (MemberBase *)found;
    PyObject *buffer = member->buffer;
    if (buffer == NULL || !PyList_CheckExact(buffer) || PyList_GET_SIZE(buffer) == 0) {
        return PyObject_Vectorcall(self->slow, args, nargsf, kwnames); /* it refills the buffer */
    }
    /* list.pop() without the call: the reference the list held becomes ours. */
    Py_ssize_t last = PyList_GET_SIZE(buffer) - 1;
    PyObject *native = PyList_GET_ITEM(buffer, last);
    Py_SET_SIZE(buffer, last);
    Py_INCREF(found); /* the callbacks below may replace the member */
    PyObject *result = NULL;
    PyObject *error = call_native(native, &native_error);
    if (error == NULL) {
        goto done;
    }
    int clean = error == Py_None;
    Py_DECREF(error);
    if (!clean || member->slow) {
        PyObject *timeout = nargs == 1 ? args[0] : Py_None;
        result = PyObject_CallFunctionObjArgs(self->rare, timeout, found, native, NULL);
        goto done;
    }
    if (--member->countdown == 0) {
        PyObject *ticked = PyObject_CallFunctionObjArgs(self->tick, found, native, NULL);
        if (ticked == NULL) {
            /* Not returned, so not lost: the record goes back to the buffer for the next poll. */
            PyObject *type, *value, *traceback;
            PyErr_Fetch(&type, &value, &traceback);
            PyObject *buffer_now = member->buffer; /* the tick may have replaced it */
            if (buffer_now != NULL && PyList_Check(buffer_now) && PyList_Append(buffer_now, native) < 0) {
                PyErr_Clear();
            }
            PyErr_Restore(type, value, traceback);
            goto done;
        }
        Py_DECREF(ticked);
    }
    result = message_new(&Message_Type, native, member->source);
    if (result != NULL) {
        ((Message *)result)->clean = 1;
    }
done:
    Py_DECREF(native);
    Py_DECREF(found);
    return result;
}

static PyObject *
FastPoll_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    PyObject *slow, *rare, *tick;
    static char *kwlist[] = {"slow", "rare", "tick", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOO:FastPoll", kwlist, &slow, &rare, &tick)) {
        return NULL;
    }
    FastPoll *self = (FastPoll *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    self->slow = Py_NewRef(slow);
    self->rare = Py_NewRef(rare);
    self->tick = Py_NewRef(tick);
    self->vectorcall = (vectorcallfunc)FastPoll_vectorcall;
    return (PyObject *)self;
}

static int
FastPoll_traverse(FastPoll *self, visitproc visit, void *arg)
{
    Py_VISIT(self->member);
    Py_VISIT(self->slow);
    Py_VISIT(self->rare);
    Py_VISIT(self->tick);
    return 0;
}

static int
FastPoll_clear(FastPoll *self)
{
    Py_CLEAR(self->member);
    Py_CLEAR(self->slow);
    Py_CLEAR(self->rare);
    Py_CLEAR(self->tick);
    return 0;
}

static void
FastPoll_dealloc(FastPoll *self)
{
    PyObject_GC_UnTrack(self);
    FastPoll_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMemberDef FastPoll_members[] = {
    {"member", T_OBJECT, offsetof(FastPoll, member), 0, "the only member, or None"},
    {NULL},
};

static PyTypeObject FastPoll_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "psc._speedups.FastPoll",
    .tp_doc = "FastPoll(slow, rare, tick): Consumer.poll served from the only member's buffer, in C.",
    .tp_basicsize = sizeof(FastPoll),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_new = FastPoll_new,
    .tp_dealloc = (destructor)FastPoll_dealloc,
    .tp_traverse = (traverseproc)FastPoll_traverse,
    .tp_clear = (inquiry)FastPoll_clear,
    .tp_call = PyVectorcall_Call,
    .tp_vectorcall_offset = offsetof(FastPoll, vectorcall),
    .tp_members = FastPoll_members,
};

/* --- wrap_batch ------------------------------------------------------------------------------------ */

/* wrap_batch(source, batch): [Message(native, source) for native in batch], or None when a record carries
 * an error (the caller then takes the batch the slow way). */
static PyObject *
wrap_batch(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2 || !PyList_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "wrap_batch(source, batch: list)");
        return NULL;
    }
    PyObject *source = args[0], *batch = args[1];
    Py_ssize_t size = PyList_GET_SIZE(batch);
    PyObject *out = PyList_New(size);
    if (out == NULL) {
        return NULL;
    }
    for (Py_ssize_t i = 0; i < size; i++) { /* one pass: a record with an error is rare, so wrap as we check */
        PyObject *native = PyList_GET_ITEM(batch, i);
        PyObject *error = call_native(native, &native_error);
        if (error == NULL || error != Py_None) {
            Py_XDECREF(error);
            Py_SET_SIZE(out, i); /* the items after i were never set */
            Py_DECREF(out);
            if (error == NULL) {
                return NULL;
            }
            Py_RETURN_NONE;
        }
        Py_DECREF(error);
        PyObject *message = message_new(&Message_Type, native, source);
        if (message == NULL) {
            Py_SET_SIZE(out, i);
            Py_DECREF(out);
            return NULL;
        }
        ((Message *)message)->clean = 1;
        PyList_SET_ITEM(out, i, message);
    }
    return out;
}

static PyMethodDef module_methods[] = {
    {"wrap_batch", (PyCFunction)(void (*)(void))wrap_batch, METH_FASTCALL,
     "wrap_batch(source, batch): a Message per native record, or None if one carries an error."},
    {NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    .m_name = "psc._speedups",
    .m_doc = "The per-record hot paths of the PSC clients, in C.",
    .m_size = -1,
    .m_methods = module_methods,
};

static int
intern_names(void)
{
    struct {
        PyObject **slot;
        const char *name;
    } names[] = {
        {&str_error, "error"},         {&str_partition, "partition"}, {&str_offset, "offset"},
        {&str_timestamp, "timestamp"}, {&str_key, "key"},             {&str_value, "value"},
        {&str_headers, "headers"},     {&str_topic, "topic"},         {&str_topic_uri, "topic_uri"},
        {&str_is_eof, "is_eof"},       {&str_message_id, "message_id"}, {&str_leader_epoch, "leader_epoch"},
        {&str_latency, "latency"},     {&str_callback, "callback"},   {&str_on_delivery, "on_delivery"},
        {&str_failed, "failed"},
    };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        *names[i].slot = PyUnicode_InternFromString(names[i].name);
        if (*names[i].slot == NULL) {
            return -1;
        }
    }
    minus_one = PyLong_FromLong(-1);
    zero = PyLong_FromLong(0);
    kw_timestamp = PyTuple_Pack(1, str_timestamp);
    kw_headers = PyTuple_Pack(1, str_headers);
    kw_timestamp_headers = PyTuple_Pack(2, str_timestamp, str_headers);
    return minus_one && zero && kw_timestamp && kw_headers && kw_timestamp_headers ? 0 : -1;
}

PyMODINIT_FUNC
PyInit__speedups(void)
{
    if (intern_names() < 0 || PyType_Ready(&DeliveryTally_Type) < 0 || PyType_Ready(&RouteBase_Type) < 0 ||
        PyType_Ready(&Report_Type) < 0 || PyType_Ready(&FastProduce_Type) < 0 ||
        PyType_Ready(&Message_Type) < 0 || PyType_Ready(&MemberBase_Type) < 0 || PyType_Ready(&FastPoll_Type) < 0) {
        return NULL;
    }
    PyObject *module = PyModule_Create(&module_def);
    if (module == NULL) {
        return NULL;
    }
    if (PyModule_AddObjectRef(module, "DeliveryTally", (PyObject *)&DeliveryTally_Type) < 0 ||
        PyModule_AddObjectRef(module, "RouteBase", (PyObject *)&RouteBase_Type) < 0 ||
        PyModule_AddObjectRef(module, "Report", (PyObject *)&Report_Type) < 0 ||
        PyModule_AddObjectRef(module, "FastProduce", (PyObject *)&FastProduce_Type) < 0 ||
        PyModule_AddObjectRef(module, "Message", (PyObject *)&Message_Type) < 0 ||
        PyModule_AddObjectRef(module, "MemberBase", (PyObject *)&MemberBase_Type) < 0 ||
        PyModule_AddObjectRef(module, "FastPoll", (PyObject *)&FastPoll_Type) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
