/*
 * psc._failure_trap: a librdkafka plugin that keeps the failed deliveries of records sent without a callback.
 *
 * With a default on_delivery, confluent-kafka builds a Message (a copy of the value included) and calls Python
 * for every delivery report, though PSC only acts on failures. Without one, a report costs confluent-kafka no
 * Python call. This plugin lets PSC's Kafka producers go without one: loaded into a confluent-kafka producer
 * (its path in plugin.library.paths), it adds an on_acknowledgement interceptor that runs on librdkafka's own
 * threads for every record, ignores successes and records that carry their own callback, and copies a failure
 * (headers included, which confluent-kafka's own reports lack) into a list that Python takes from poll() and
 * flush().
 *
 * Which records carry their own callback: confluent-kafka gives every record an opaque of two pointers, its
 * Producer object and the record's callback (NULL without one). The first is checked against the producer the
 * trap is bound to; a record whose opaque does not match is kept as a failure and counted as foreign, so a
 * changed layout shows up instead of losing reports.
 *
 * A record refused by produce() itself (a partition that does not exist) is reported to the interceptor in
 * the producing thread, which holds the GIL, and produce() raises: those are left alone. A purge in that
 * thread (records still waiting for their topic's metadata) is kept like any failure.
 *
 * librdkafka is loaded at run time (load()), the same copy confluent-kafka uses, and only its public ABI is used.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "_rdkafka_load.h"

typedef struct rd_kafka_s rd_kafka_t;
typedef struct rd_kafka_conf_s rd_kafka_conf_t;
typedef struct rd_kafka_topic_s rd_kafka_topic_t;
typedef struct rd_kafka_headers_s rd_kafka_headers_t;
typedef int rd_kafka_resp_err_t;

typedef struct {
    rd_kafka_resp_err_t err;
    rd_kafka_topic_t *rkt;
    int32_t partition;
    void *payload;
    size_t len;
    void *key;
    size_t key_len;
    int64_t offset;
    void *_private; /* the message's opaque */
} rd_kafka_message_t;

#define RD_KAFKA_RESP_ERR__INVALID_ARG (-186)
#define RD_KAFKA_RESP_ERR__PURGE_QUEUE (-152)
#define RD_KAFKA_RESP_ERR__PURGE_INFLIGHT (-151)

typedef rd_kafka_resp_err_t (*on_new_t)(rd_kafka_t *, const rd_kafka_conf_t *, void *, char *, size_t);
typedef rd_kafka_resp_err_t (*on_conf_destroy_t)(void *);
typedef rd_kafka_resp_err_t (*on_ack_t)(rd_kafka_t *, rd_kafka_message_t *, void *);

static struct {
    const char *(*topic_name)(const rd_kafka_topic_t *);
    const char *(*err2str)(rd_kafka_resp_err_t);
    int64_t (*message_timestamp)(const rd_kafka_message_t *, int *);
    rd_kafka_resp_err_t (*message_headers)(const rd_kafka_message_t *, rd_kafka_headers_t **);
    rd_kafka_resp_err_t (*header_get_all)(const rd_kafka_headers_t *, size_t, const char **, const void **, size_t *);
    rd_kafka_resp_err_t (*add_on_new)(rd_kafka_conf_t *, const char *, on_new_t, void *);
    rd_kafka_resp_err_t (*add_on_conf_destroy)(rd_kafka_conf_t *, const char *, on_conf_destroy_t, void *);
    rd_kafka_resp_err_t (*add_on_acknowledgement)(rd_kafka_t *, const char *, on_ack_t, void *);
} rk_api;

static void *library; /* the dlopen() handle, once load() succeeded */

static const char IC_NAME[] = "psc.failure_trap";

/* --- The trap's state, shared by its Python object and the librdkafka client ---------------------------- */

typedef struct {
    const char *name;
    const char *value; /* NULL: a header without a value */
    size_t size;
} header_t;

typedef struct failure {
    struct failure *next;
    rd_kafka_resp_err_t err;
    int32_t partition;
    int64_t offset;
    int64_t timestamp;
    int timestamp_type;
    char *topic;
    char *key; /* NULL: none */
    size_t key_len;
    char *value; /* NULL: none */
    size_t value_len;
    header_t *headers; /* the record's headers, in order */
    size_t n_headers;
} failure_t;

typedef struct {
    pthread_mutex_t lock;
    failure_t *head;
    failure_t **tail;
    Py_ssize_t count;    /* failures kept, not yet taken; under lock */
    long foreign;        /* records whose opaque is not confluent-kafka's; under lock */
    long lost;           /* failures that could not be copied (out of memory); under lock */
    const void *handle;  /* the confluent-kafka Producer the trap serves; set once, before any record */
    int refs;            /* the Python object, and the configuration or client holding the interceptors */
} trap_t;

static void
trap_release(trap_t *trap)
{
    if (__atomic_sub_fetch(&trap->refs, 1, __ATOMIC_ACQ_REL) != 0) {
        return;
    }
    for (failure_t *f = trap->head, *next; f != NULL; f = next) {
        next = f->next;
        free(f);
    }
    pthread_mutex_destroy(&trap->lock);
    free(trap);
}

static char *
copy_bytes(char **at, const void *bytes, size_t size)
{
    char *copy = memcpy(*at, bytes, size);
    *at += size;
    return copy;
}

/* One allocation per failure: the struct, its headers' entries, then topic, key, value and header bytes. */
static failure_t *
copy_failure(const rd_kafka_message_t *m)
{
    const char *topic = m->rkt != NULL ? rk_api.topic_name(m->rkt) : "";
    size_t topic_len = strlen(topic) + 1;
    size_t key_len = m->key != NULL ? m->key_len : 0;
    size_t value_len = m->payload != NULL ? m->len : 0;
    rd_kafka_headers_t *hdrs = NULL;
    const char *name;
    const void *value;
    size_t size, n_headers = 0, header_bytes = 0;
    if (rk_api.message_headers(m, &hdrs) != 0) {
        hdrs = NULL; /* none */
    }
    for (; hdrs != NULL && rk_api.header_get_all(hdrs, n_headers, &name, &value, &size) == 0; n_headers++) {
        header_bytes += strlen(name) + 1 + (value != NULL ? size : 0);
    }
    failure_t *f = malloc(sizeof(failure_t) + n_headers * sizeof(header_t) + topic_len + key_len + value_len +
                          header_bytes);
    if (f == NULL) {
        return NULL;
    }
    f->headers = (header_t *)(f + 1);
    f->n_headers = n_headers;
    char *at = (char *)(f->headers + n_headers);
    f->next = NULL;
    f->err = m->err;
    f->partition = m->partition;
    f->offset = m->offset;
    f->timestamp = rk_api.message_timestamp(m, &f->timestamp_type);
    f->topic = copy_bytes(&at, topic, topic_len);
    f->key = m->key != NULL ? copy_bytes(&at, m->key, key_len) : NULL;
    f->key_len = key_len;
    f->value = m->payload != NULL ? copy_bytes(&at, m->payload, value_len) : NULL;
    f->value_len = value_len;
    for (size_t i = 0; i < n_headers; i++) {
        rk_api.header_get_all(hdrs, i, &name, &value, &size);
        header_t *h = &f->headers[i];
        h->name = copy_bytes(&at, name, strlen(name) + 1);
        h->value = value != NULL ? copy_bytes(&at, value, size) : NULL;
        h->size = value != NULL ? size : 0;
    }
    return f;
}

static rd_kafka_resp_err_t
on_acknowledgement(rd_kafka_t *rk, rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    if (m->err == 0) {
        return 0;
    }
    trap_t *trap = opaque;
    void *const *state = m->_private; /* confluent-kafka's: {Producer *self; PyObject *dr_cb;}, or none */
    int foreign = state != NULL && state[0] != trap->handle;
    if (state != NULL && !foreign && state[1] != NULL) {
        return 0; /* its own callback hears of it */
    }
    if (m->err != RD_KAFKA_RESP_ERR__PURGE_QUEUE && m->err != RD_KAFKA_RESP_ERR__PURGE_INFLIGHT &&
        PyGILState_Check()) {
        return 0; /* refused by produce(), which raises */
    }
    failure_t *f = copy_failure(m);
    pthread_mutex_lock(&trap->lock);
    trap->foreign += foreign;
    if (f != NULL) {
        *trap->tail = f;
        trap->tail = &f->next;
        trap->count++;
    } else {
        trap->lost++;
    }
    pthread_mutex_unlock(&trap->lock);
    return 0;
}

static rd_kafka_resp_err_t
on_conf_destroy(void *opaque)
{
    trap_release(opaque);
    return 0;
}

static rd_kafka_resp_err_t
on_new(rd_kafka_t *rk, const rd_kafka_conf_t *conf, void *opaque, char *errstr, size_t errstr_size)
{
    (void)conf;
    (void)errstr;
    (void)errstr_size;
    return rk_api.add_on_acknowledgement(rk, IC_NAME, on_acknowledgement, opaque);
}

/* The trap being installed by the thread that is creating a producer (see Trap.install). */
static _Thread_local trap_t *installing;

/* librdkafka's plugin entry point, called when plugin.library.paths names this file. */
__attribute__((visibility("default"))) rd_kafka_resp_err_t
conf_init(rd_kafka_conf_t *conf, void **plug_opaquep, char *errstr, size_t errstr_size)
{
    *plug_opaquep = NULL;
    trap_t *trap = installing;
    if (trap == NULL || library == NULL) {
        snprintf(errstr, errstr_size, "%s is loaded by psc for its own producers only", IC_NAME);
        return RD_KAFKA_RESP_ERR__INVALID_ARG;
    }
    installing = NULL;
    __atomic_add_fetch(&trap->refs, 1, __ATOMIC_ACQ_REL);
    rd_kafka_resp_err_t err = rk_api.add_on_conf_destroy(conf, IC_NAME, on_conf_destroy, trap);
    if (err != 0) {
        trap_release(trap);
        snprintf(errstr, errstr_size, "%s: cannot add its interceptors (%s)", IC_NAME, rk_api.err2str(err));
        return err;
    }
    return rk_api.add_on_new(conf, IC_NAME, on_new, trap);
}

/* --- The Python object -------------------------------------------------------------------------------- */

typedef struct {
    PyObject_HEAD
    trap_t *trap;
} Trap;

static PyObject *
Trap_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    if (library == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "librdkafka is not loaded: call load() first");
        return NULL;
    }
    if (PyTuple_GET_SIZE(args) != 0 || (kwargs != NULL && PyDict_GET_SIZE(kwargs) != 0)) {
        PyErr_SetString(PyExc_TypeError, "Trap() takes no arguments");
        return NULL;
    }
    trap_t *trap = calloc(1, sizeof(trap_t));
    if (trap == NULL) {
        return PyErr_NoMemory();
    }
    pthread_mutex_init(&trap->lock, NULL);
    trap->tail = &trap->head;
    trap->refs = 1;
    Trap *self = (Trap *)type->tp_alloc(type, 0);
    if (self == NULL) {
        trap_release(trap);
        return NULL;
    }
    self->trap = trap;
    return (PyObject *)self;
}

static void
Trap_dealloc(Trap *self)
{
    if (installing == self->trap) {
        installing = NULL;
    }
    trap_release(self->trap);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *
Trap_install(Trap *self, PyObject *arg)
{
    installing = PyObject_IsTrue(arg) ? self->trap : NULL;
    Py_RETURN_NONE;
}

static PyObject *
Trap_bind(Trap *self, PyObject *producer)
{
    self->trap->handle = producer;
    Py_RETURN_NONE;
}

/* [(name, value or None)], or None for a record without headers, as confluent-kafka's Message has them. */
static PyObject *
headers_list(const failure_t *f)
{
    if (f->n_headers == 0) {
        Py_RETURN_NONE;
    }
    PyObject *list = PyList_New((Py_ssize_t)f->n_headers);
    for (size_t i = 0; list != NULL && i < f->n_headers; i++) {
        const header_t *h = &f->headers[i];
        PyObject *pair = Py_BuildValue("(sy#)", h->name, h->value, (Py_ssize_t)h->size);
        if (pair == NULL) {
            Py_CLEAR(list);
            break;
        }
        PyList_SET_ITEM(list, (Py_ssize_t)i, pair);
    }
    return list;
}

static PyObject *
failure_tuple(const failure_t *f)
{
    PyObject *headers = headers_list(f);
    if (headers == NULL) {
        return NULL;
    }
    return Py_BuildValue(
        "(issiLy#y#(iL)N)", (int)f->err, rk_api.err2str(f->err), f->topic, (int)f->partition, (long long)f->offset,
        f->key, (Py_ssize_t)f->key_len, f->value, (Py_ssize_t)f->value_len, f->timestamp_type,
        (long long)f->timestamp, headers);
}

static PyObject *
Trap_take(Trap *self, PyObject *Py_UNUSED(ignored))
{
    trap_t *trap = self->trap;
    pthread_mutex_lock(&trap->lock);
    failure_t *head = trap->head;
    trap->head = NULL;
    trap->tail = &trap->head;
    trap->count = 0;
    pthread_mutex_unlock(&trap->lock);
    PyObject *list = PyList_New(0);
    failure_t *f = head;
    for (; f != NULL && list != NULL; f = head) {
        PyObject *item = failure_tuple(f);
        if (item == NULL || PyList_Append(list, item) < 0) {
            Py_XDECREF(item);
            Py_CLEAR(list);
            break;
        }
        Py_DECREF(item);
        head = f->next;
        free(f);
    }
    if (head != NULL) { /* an error above: put back what was not taken, ahead of newer failures */
        pthread_mutex_lock(&trap->lock);
        failure_t *last = head;
        Py_ssize_t n = 1;
        for (; last->next != NULL; last = last->next) {
            n++;
        }
        last->next = trap->head;
        if (trap->head == NULL) {
            trap->tail = &last->next;
        }
        trap->head = head;
        trap->count += n;
        pthread_mutex_unlock(&trap->lock);
    }
    return list;
}

static PyObject *
Trap_counts(Trap *self, PyObject *Py_UNUSED(ignored))
{
    trap_t *trap = self->trap;
    pthread_mutex_lock(&trap->lock);
    long foreign = trap->foreign, lost = trap->lost;
    pthread_mutex_unlock(&trap->lock);
    return Py_BuildValue("(ll)", foreign, lost);
}

static Py_ssize_t
Trap_len(Trap *self)
{
    return __atomic_load_n(&self->trap->count, __ATOMIC_RELAXED);
}

static PyMethodDef Trap_methods[] = {
    {"install", (PyCFunction)Trap_install, METH_O,
     "install(on): the next producer this thread configures with this plugin reports to this trap"},
    {"bind", (PyCFunction)Trap_bind, METH_O, "bind(producer): the confluent-kafka Producer whose records it serves"},
    {"take", (PyCFunction)Trap_take, METH_NOARGS,
     "take() -> [(code, reason, topic, partition, offset, key, value, (timestamp_type, timestamp), headers)], oldest first"},
    {"counts", (PyCFunction)Trap_counts, METH_NOARGS,
     "counts() -> (foreign, lost): failures of records with an unknown opaque; failures not kept for want of memory"},
    {NULL},
};

static PySequenceMethods Trap_as_sequence = {
    .sq_length = (lenfunc)Trap_len,
};

static PyTypeObject Trap_Type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "psc._failure_trap.Trap",
    .tp_doc = "Failed deliveries of a confluent-kafka producer's records that have no callback of their own.",
    .tp_basicsize = sizeof(Trap),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = Trap_new,
    .tp_dealloc = (destructor)Trap_dealloc,
    .tp_methods = Trap_methods,
    .tp_as_sequence = &Trap_as_sequence,
};

/* --- Module ------------------------------------------------------------------------------------------- */

static PyObject *
load(PyObject *module, PyObject *arg)
{
    if (library != NULL) {
        Py_RETURN_NONE;
    }
    static const rk_symbol symbols[] = {
#define SYMBOL(field, name) RK_SYMBOL(rk_api, field, name)
        SYMBOL(topic_name, "rd_kafka_topic_name"),
        SYMBOL(err2str, "rd_kafka_err2str"),
        SYMBOL(message_timestamp, "rd_kafka_message_timestamp"),
        SYMBOL(message_headers, "rd_kafka_message_headers"),
        SYMBOL(header_get_all, "rd_kafka_header_get_all"),
        SYMBOL(add_on_new, "rd_kafka_conf_interceptor_add_on_new"),
        SYMBOL(add_on_conf_destroy, "rd_kafka_conf_interceptor_add_on_conf_destroy"),
        SYMBOL(add_on_acknowledgement, "rd_kafka_interceptor_add_on_acknowledgement"),
#undef SYMBOL
    };
    void *handle = rk_load(arg, symbols, sizeof(symbols) / sizeof(symbols[0]));
    if (handle == NULL) {
        return NULL;
    }
    library = handle; /* never closed: clients using the interceptors may outlive a module reload */
    Py_RETURN_NONE;
}

static PyMethodDef module_methods[] = {
    {"load", (PyCFunction)load, METH_O, "load(path): use the librdkafka at path (the one confluent-kafka loaded)"},
    {NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    "psc._failure_trap",
    "A librdkafka plugin keeping the failed deliveries of records that have no callback of their own.",
    -1,
    module_methods,
};

PyMODINIT_FUNC
PyInit__failure_trap(void)
{
    if (PyType_Ready(&Trap_Type) < 0) {
        return NULL;
    }
    PyObject *module = PyModule_Create(&module_def);
    if (module == NULL) {
        return NULL;
    }
    if (PyModule_AddObjectRef(module, "Trap", (PyObject *)&Trap_Type) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
