/*
 * psc._rdkafka: a Kafka producer that queues a whole batch of records in one call, over librdkafka itself.
 *
 * confluent-kafka's produce() costs a Python call, argument parsing and a header conversion per record, more
 * than librdkafka spends on the record. Here one call queues every record of a batch: the values, their
 * partitions and keys, headers shared by the batch and headers built per record from an integer (prefix +
 * 8 bytes big-endian), all in C. Each record's delivery report goes to its batch's psc.DeliveryTally: a
 * success is counted in C, a failure calls a Python hook with the record's topic, partition, key, value and
 * headers.
 *
 * librdkafka is loaded at run time (load()), from the copy confluent-kafka ships or the system's, and only its
 * public ABI is used: the prototypes and the few structs touched are declared below, as rdkafka.h has them.
 *
 * The GIL is released around calls that block (poll with a timeout, flush, purge, destroy). Callbacks only
 * run inside those calls, on the thread that made them (logs are routed to the main queue). A success only
 * changes the tally's two counters, in C, and the tally's reference (one per record) is dropped once the GIL
 * is back; a failure, an error or a log line takes the GIL for its own Python call.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <dlfcn.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "_rdkafka_load.h"
#include "_tally.h"

/* --- librdkafka's public ABI ----------------------------------------------------------------------- */

typedef struct rd_kafka_s rd_kafka_t;
typedef struct rd_kafka_conf_s rd_kafka_conf_t;
typedef struct rd_kafka_topic_s rd_kafka_topic_t;
typedef struct rd_kafka_topic_conf_s rd_kafka_topic_conf_t;
typedef struct rd_kafka_queue_s rd_kafka_queue_t;
typedef struct rd_kafka_headers_s rd_kafka_headers_t;
typedef struct rd_kafka_error_s rd_kafka_error_t;
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

enum {
    VTYPE_END,
    VTYPE_TOPIC,
    VTYPE_RKT,
    VTYPE_PARTITION,
    VTYPE_VALUE,
    VTYPE_KEY,
    VTYPE_OPAQUE,
    VTYPE_MSGFLAGS,
    VTYPE_TIMESTAMP,
    VTYPE_HEADER,
    VTYPE_HEADERS,
};

typedef struct {
    int vtype;
    union {
        const char *cstr;
        rd_kafka_topic_t *rkt;
        int i;
        int32_t i32;
        int64_t i64;
        struct {
            void *ptr;
            size_t size;
        } mem;
        struct {
            const char *name;
            const void *val;
            ssize_t size;
        } header;
        rd_kafka_headers_t *headers;
        void *ptr;
        char _pad[64];
    } u;
} rd_kafka_vu_t;

#define RD_KAFKA_PRODUCER 0
#define RD_KAFKA_CONF_OK 0
#define RD_KAFKA_MSG_F_COPY 0x2
#define RD_KAFKA_PURGE_F_QUEUE 0x1
#define RD_KAFKA_PURGE_F_INFLIGHT 0x2
#define RD_KAFKA_PURGE_F_NON_BLOCKING 0x4
#define RD_KAFKA_RESP_ERR__FATAL (-150)
#define MIN_VERSION 0x02000000 /* 2.0.0: produceva, purge, fatal errors, log queues */

typedef void (*dr_msg_cb_t)(rd_kafka_t *, const rd_kafka_message_t *, void *);
typedef void (*error_cb_t)(rd_kafka_t *, int, const char *, void *);
typedef void (*log_cb_t)(const rd_kafka_t *, int, const char *, const char *);

static struct {
    int (*version)(void);
    const char *(*version_str)(void);
    rd_kafka_conf_t *(*conf_new)(void);
    int (*conf_set)(rd_kafka_conf_t *, const char *, const char *, char *, size_t);
    void (*conf_set_dr_msg_cb)(rd_kafka_conf_t *, dr_msg_cb_t);
    void (*conf_set_error_cb)(rd_kafka_conf_t *, error_cb_t);
    void (*conf_set_log_cb)(rd_kafka_conf_t *, log_cb_t);
    void (*conf_set_opaque)(rd_kafka_conf_t *, void *);
    void (*conf_destroy)(rd_kafka_conf_t *);
    rd_kafka_t *(*new_)(int, rd_kafka_conf_t *, char *, size_t);
    void (*destroy)(rd_kafka_t *);
    void *(*opaque)(const rd_kafka_t *);
    rd_kafka_resp_err_t (*set_log_queue)(rd_kafka_t *, rd_kafka_queue_t *);
    int (*poll)(rd_kafka_t *, int);
    rd_kafka_resp_err_t (*purge)(rd_kafka_t *, int);
    rd_kafka_resp_err_t (*flush)(rd_kafka_t *, int);
    int (*outq_len)(rd_kafka_t *);
    rd_kafka_topic_t *(*topic_new)(rd_kafka_t *, const char *, rd_kafka_topic_conf_t *);
    void (*topic_destroy)(rd_kafka_topic_t *);
    const char *(*topic_name)(const rd_kafka_topic_t *);
    rd_kafka_error_t *(*produceva)(rd_kafka_t *, const rd_kafka_vu_t *, size_t);
    rd_kafka_resp_err_t (*error_code)(const rd_kafka_error_t *);
    const char *(*error_string)(const rd_kafka_error_t *);
    void (*error_destroy)(rd_kafka_error_t *);
    const char *(*err2str)(rd_kafka_resp_err_t);
    rd_kafka_resp_err_t (*fatal_error)(rd_kafka_t *, char *, size_t);
    rd_kafka_resp_err_t (*message_headers)(const rd_kafka_message_t *, rd_kafka_headers_t **);
    rd_kafka_resp_err_t (*header_get_all)(const rd_kafka_headers_t *, size_t, const char **, const void **, size_t *);
} rk_api;

static void *library; /* the dlopen() handle, once load() succeeded */
static PyTypeObject *tally_type;

static PyObject *
load(PyObject *module, PyObject *arg)
{
    if (library != NULL) {
        return PyUnicode_FromString(rk_api.version_str());
    }
    static const rk_symbol symbols[] = {
#define SYMBOL(field, name) RK_SYMBOL(rk_api, field, name)
        SYMBOL(version, "rd_kafka_version"),
        SYMBOL(version_str, "rd_kafka_version_str"),
        SYMBOL(conf_new, "rd_kafka_conf_new"),
        SYMBOL(conf_set, "rd_kafka_conf_set"),
        SYMBOL(conf_set_dr_msg_cb, "rd_kafka_conf_set_dr_msg_cb"),
        SYMBOL(conf_set_error_cb, "rd_kafka_conf_set_error_cb"),
        SYMBOL(conf_set_log_cb, "rd_kafka_conf_set_log_cb"),
        SYMBOL(conf_set_opaque, "rd_kafka_conf_set_opaque"),
        SYMBOL(conf_destroy, "rd_kafka_conf_destroy"),
        SYMBOL(new_, "rd_kafka_new"),
        SYMBOL(destroy, "rd_kafka_destroy"),
        SYMBOL(opaque, "rd_kafka_opaque"),
        SYMBOL(set_log_queue, "rd_kafka_set_log_queue"),
        SYMBOL(poll, "rd_kafka_poll"),
        SYMBOL(purge, "rd_kafka_purge"),
        SYMBOL(flush, "rd_kafka_flush"),
        SYMBOL(outq_len, "rd_kafka_outq_len"),
        SYMBOL(topic_new, "rd_kafka_topic_new"),
        SYMBOL(topic_destroy, "rd_kafka_topic_destroy"),
        SYMBOL(topic_name, "rd_kafka_topic_name"),
        SYMBOL(produceva, "rd_kafka_produceva"),
        SYMBOL(error_code, "rd_kafka_error_code"),
        SYMBOL(error_string, "rd_kafka_error_string"),
        SYMBOL(error_destroy, "rd_kafka_error_destroy"),
        SYMBOL(err2str, "rd_kafka_err2str"),
        SYMBOL(fatal_error, "rd_kafka_fatal_error"),
        SYMBOL(message_headers, "rd_kafka_message_headers"),
        SYMBOL(header_get_all, "rd_kafka_header_get_all"),
#undef SYMBOL
    };
    void *handle = rk_load(arg, symbols, sizeof(symbols) / sizeof(symbols[0]));
    if (handle == NULL) {
        return NULL;
    }
    if (rk_api.version() < MIN_VERSION) {
        PyErr_Format(PyExc_ImportError, "librdkafka %s is older than 2.0.0", rk_api.version_str());
        dlclose(handle);
        return NULL;
    }
    library = handle; /* never closed: librdkafka's threads may outlive a module reload */
    return PyUnicode_FromString(rk_api.version_str());
}

/* --- Producer -------------------------------------------------------------------------------------- */

typedef struct {
    PyObject_HEAD
    rd_kafka_t *rk;
    PyObject *topics;         /* topic name -> PyCapsule of its rd_kafka_topic_t */
    PyObject *on_failure;     /* on_failure(tally, code, reason, topic, partition, key, value, headers) */
    PyObject *on_error;       /* on_error(code, reason, fatal) */
    PyObject *on_log;         /* on_log(syslog_level, facility, message) */
    PyObject *hook_exc[3];    /* the first exception a hook raised inside a callback (type, value, traceback) */
    PyThreadState *released;  /* set while the GIL is released around a librdkafka call */
    PyObject **unreferenced;  /* tallies of records reported while the GIL was released: one DECREF each due */
    Py_ssize_t n_unreferenced, cap_unreferenced;
    int serving;              /* a call that serves callbacks is running: one at a time, and none from a hook */
} Producer;

static void
release_gil(Producer *self)
{
    self->released = PyEval_SaveThread();
}

/* Back from a blocking call: take the GIL and drop the references of the records reported meanwhile. */
static void
reacquire_gil(Producer *self)
{
    PyThreadState *state = self->released;
    self->released = NULL;
    PyEval_RestoreThread(state);
    for (Py_ssize_t i = 0; i < self->n_unreferenced; i++) {
        Py_DECREF(self->unreferenced[i]);
    }
    self->n_unreferenced = 0;
}

/* A callback about to call Python: take the GIL if the call around it released it (1), else it is held (0). */
static int
enter_python(Producer *self)
{
    if (self->released == NULL) {
        return 0;
    }
    PyEval_RestoreThread(self->released);
    return 1;
}

static void
leave_python(Producer *self, int entered)
{
    if (entered) {
        self->released = PyEval_SaveThread();
    }
}

/* Drop a reported record's reference to its tally: now if the GIL is held, else once it is back. */
static void
unreference(Producer *self, PyObject *tally)
{
    if (self->released == NULL) {
        Py_DECREF(tally);
        return;
    }
    if (self->n_unreferenced == self->cap_unreferenced) {
        Py_ssize_t cap = self->cap_unreferenced ? self->cap_unreferenced * 2 : 4096;
        PyObject **grown = realloc(self->unreferenced, (size_t)cap * sizeof(PyObject *));
        if (grown == NULL) { /* no memory to defer it: take the GIL for this one */
            int entered = enter_python(self);
            Py_DECREF(tally);
            leave_python(self, entered);
            return;
        }
        self->unreferenced = grown;
        self->cap_unreferenced = cap;
    }
    self->unreferenced[self->n_unreferenced++] = tally;
}

static void
keep_hook_error(Producer *self)
{
    if (self->hook_exc[0] == NULL) {
        PyErr_Fetch(&self->hook_exc[0], &self->hook_exc[1], &self->hook_exc[2]);
    } else {
        PyErr_WriteUnraisable(self->on_failure);
    }
}

static PyObject *
message_headers(const rd_kafka_message_t *m)
{
    PyObject *list = PyList_New(0);
    rd_kafka_headers_t *hdrs = NULL;
    if (list == NULL || rk_api.message_headers(m, &hdrs) != 0 || hdrs == NULL) {
        return list;
    }
    const char *name;
    const void *value;
    size_t size;
    for (size_t i = 0; rk_api.header_get_all(hdrs, i, &name, &value, &size) == 0; i++) {
        PyObject *pair = value == NULL ? Py_BuildValue("(sO)", name, Py_None)
                                       : Py_BuildValue("(sy#)", name, (const char *)value, (Py_ssize_t)size);
        if (pair == NULL || PyList_Append(list, pair) < 0) {
            Py_XDECREF(pair);
            Py_DECREF(list);
            return NULL;
        }
        Py_DECREF(pair);
    }
    return list;
}

static void
report_failure(Producer *self, PyObject *tally, const rd_kafka_message_t *m)
{
    PyObject *headers = message_headers(m);
    PyObject *result = NULL;
    if (headers != NULL) {
        const char *topic = m->rkt != NULL ? rk_api.topic_name(m->rkt) : "";
        result = PyObject_CallFunction(
            self->on_failure, "OissiNNO", tally, (int)m->err, rk_api.err2str(m->err), topic, (int)m->partition,
            m->key != NULL ? PyBytes_FromStringAndSize(m->key, (Py_ssize_t)m->key_len) : Py_NewRef(Py_None),
            m->payload != NULL ? PyBytes_FromStringAndSize(m->payload, (Py_ssize_t)m->len) : Py_NewRef(Py_None),
            headers);
        Py_DECREF(headers);
    }
    if (result == NULL) {
        keep_hook_error(self);
    }
    Py_XDECREF(result);
}

static void
on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    Producer *self = opaque;
    PyObject *tally = m->_private;
    if (tally == NULL) {
        return;
    }
    /* Plain counters: only the thread in the call that serves reports touches them (see the header). */
    DeliveryTally *counts = (DeliveryTally *)tally;
    counts->pending--;
    if (m->err == 0) {
        counts->acked++;
    } else {
        int entered = enter_python(self);
        report_failure(self, tally, m);
        leave_python(self, entered);
    }
    unreference(self, tally);
}

static void
on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    Producer *self = opaque;
    int entered = enter_python(self);
    int fatal = 0;
    char fatal_reason[512];
    if (err == RD_KAFKA_RESP_ERR__FATAL) { /* the error that made the client unusable */
        fatal = 1;
        err = rk_api.fatal_error(rk, fatal_reason, sizeof(fatal_reason));
        reason = fatal_reason;
    }
    PyObject *result = PyObject_CallFunction(self->on_error, "isO", err, reason, fatal ? Py_True : Py_False);
    if (result == NULL) {
        keep_hook_error(self);
    }
    Py_XDECREF(result);
    leave_python(self, entered);
}

static void
on_log(const rd_kafka_t *rk, int level, const char *facility, const char *message)
{
    Producer *self = rk_api.opaque(rk);
    if (self == NULL || self->on_log == NULL) {
        return;
    }
    int entered = enter_python(self);
    PyObject *result = PyObject_CallFunction(self->on_log, "iss", level, facility, message);
    if (result == NULL) {
        keep_hook_error(self);
    }
    Py_XDECREF(result);
    leave_python(self, entered);
}

static int
Producer_init(Producer *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"config", "on_failure", "on_error", "on_log", NULL};
    PyObject *config, *on_failure_, *on_error_, *on_log_;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O!OOO:Producer", kwlist, &PyDict_Type, &config, &on_failure_,
                                     &on_error_, &on_log_)) {
        return -1;
    }
    if (library == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "librdkafka is not loaded: call load() first");
        return -1;
    }
    if (self->rk != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "the producer is already initialised");
        return -1;
    }
    char errstr[512];
    rd_kafka_conf_t *conf = rk_api.conf_new();
    PyObject *name, *value;
    Py_ssize_t pos = 0;
    while (PyDict_Next(config, &pos, &name, &value)) {
        const char *n = PyUnicode_Check(name) ? PyUnicode_AsUTF8(name) : NULL;
        const char *v = PyUnicode_Check(value) ? PyUnicode_AsUTF8(value) : NULL;
        if (n == NULL || v == NULL) {
            rk_api.conf_destroy(conf);
            if (!PyErr_Occurred()) {
                PyErr_Format(PyExc_TypeError, "librdkafka settings are str to str; got %R: %R", name, value);
            }
            return -1;
        }
        if (rk_api.conf_set(conf, n, v, errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK) {
            rk_api.conf_destroy(conf);
            PyErr_Format(PyExc_ValueError, "librdkafka setting %s=%s: %s", n, v, errstr);
            return -1;
        }
    }
    if (rk_api.conf_set(conf, "log.queue", "true", errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK) {
        rk_api.conf_destroy(conf);
        PyErr_Format(PyExc_ValueError, "librdkafka setting log.queue: %s", errstr);
        return -1;
    }
    rk_api.conf_set_dr_msg_cb(conf, on_delivery);
    rk_api.conf_set_error_cb(conf, on_error);
    rk_api.conf_set_log_cb(conf, on_log);
    rk_api.conf_set_opaque(conf, self);
    Py_XSETREF(self->on_failure, Py_NewRef(on_failure_));
    Py_XSETREF(self->on_error, Py_NewRef(on_error_));
    Py_XSETREF(self->on_log, Py_NewRef(on_log_));
    if (self->topics == NULL && (self->topics = PyDict_New()) == NULL) {
        rk_api.conf_destroy(conf);
        return -1;
    }
    rd_kafka_t *rk = rk_api.new_(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr)); /* owns conf if it succeeds */
    if (rk == NULL) {
        rk_api.conf_destroy(conf);
        PyErr_Format(PyExc_ValueError, "cannot create a librdkafka producer: %s", errstr);
        return -1;
    }
    rk_api.set_log_queue(rk, NULL); /* logs are served by poll(), on the caller's thread */
    self->rk = rk;
    return 0;
}

static int
check_open(Producer *self)
{
    if (self->rk == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "the producer is closed");
        return -1;
    }
    return 0;
}

/* Calls that serve callbacks (poll, flush, purge, close) run one at a time: callbacks find the GIL's state
 * in the producer, so a second thread, or a hook calling back in, would take the wrong one. */
static int
begin_serving(Producer *self)
{
    if (check_open(self) < 0) {
        return -1;
    }
    if (self->serving) {
        PyErr_SetString(PyExc_RuntimeError, "the producer is already serving its reports (another thread or a hook)");
        return -1;
    }
    self->serving = 1;
    return 0;
}

static void
end_serving(Producer *self)
{
    self->serving = 0;
}

/* Serve queued events for up to timeout_ms; the GIL is released only if it may wait. */
static int
serve(Producer *self, int timeout_ms)
{
    if (timeout_ms <= 0) {
        return rk_api.poll(self->rk, 0);
    }
    release_gil(self);
    int served = rk_api.poll(self->rk, timeout_ms);
    reacquire_gil(self);
    return served;
}

static PyObject *
raise_hook_error(Producer *self, PyObject *result)
{
    if (self->hook_exc[0] != NULL) {
        Py_XDECREF(result);
        PyErr_Restore(self->hook_exc[0], self->hook_exc[1], self->hook_exc[2]);
        self->hook_exc[0] = self->hook_exc[1] = self->hook_exc[2] = NULL;
        return NULL;
    }
    return result;
}

static int
timeout_ms(double timeout)
{
    if (timeout < 0) {
        return -1; /* forever */
    }
    return timeout * 1000.0 > (double)INT32_MAX ? INT32_MAX : (int)(timeout * 1000.0 + 0.5);
}

static PyObject *
Producer_poll(Producer *self, PyObject *arg)
{
    double timeout = PyFloat_AsDouble(arg);
    if ((timeout == -1.0 && PyErr_Occurred()) || begin_serving(self) < 0) {
        return NULL;
    }
    int served = serve(self, timeout_ms(timeout));
    end_serving(self);
    return raise_hook_error(self, PyLong_FromLong(served));
}

/* rd_kafka_flush(): send what is queued without waiting for linger.ms and serve reports until nothing is
 * queued or in flight, or the timeout (negative: none) passes; returns how many records are left. */
static PyObject *
Producer_flush(Producer *self, PyObject *arg)
{
    double timeout = PyFloat_AsDouble(arg);
    if ((timeout == -1.0 && PyErr_Occurred()) || begin_serving(self) < 0) {
        return NULL;
    }
    release_gil(self);
    rk_api.flush(self->rk, timeout_ms(timeout));
    reacquire_gil(self);
    end_serving(self);
    return raise_hook_error(self, PyLong_FromLong(rk_api.outq_len(self->rk)));
}

static PyObject *
Producer_purge(Producer *self, PyObject *args)
{
    int in_queue, in_flight, blocking;
    if (!PyArg_ParseTuple(args, "ppp:purge", &in_queue, &in_flight, &blocking) || begin_serving(self) < 0) {
        return NULL;
    }
    int flags = (in_queue ? RD_KAFKA_PURGE_F_QUEUE : 0) | (in_flight ? RD_KAFKA_PURGE_F_INFLIGHT : 0) |
                (blocking ? 0 : RD_KAFKA_PURGE_F_NON_BLOCKING);
    release_gil(self);
    rd_kafka_resp_err_t err = rk_api.purge(self->rk, flags);
    reacquire_gil(self);
    end_serving(self);
    if (err != 0) {
        PyErr_Format(PyExc_RuntimeError, "purge failed: %s", rk_api.err2str(err));
        return NULL;
    }
    Py_RETURN_NONE;
}

static Py_ssize_t
Producer_len(Producer *self)
{
    return self->rk == NULL ? 0 : rk_api.outq_len(self->rk);
}

/* Destroy the client. Records it still holds are not reported: flush or purge and poll first. */
static void
destroy(Producer *self)
{
    if (self->rk == NULL) {
        return;
    }
    rd_kafka_t *rk = self->rk;
    self->rk = NULL;
    PyObject *name, *capsule;
    Py_ssize_t pos = 0;
    while (self->topics != NULL && PyDict_Next(self->topics, &pos, &name, &capsule)) {
        rk_api.topic_destroy(PyCapsule_GetPointer(capsule, NULL));
    }
    if (self->topics != NULL) {
        PyDict_Clear(self->topics);
    }
    release_gil(self);
    rk_api.destroy(rk);
    reacquire_gil(self);
}

static PyObject *
Producer_close(Producer *self, PyObject *unused)
{
    if (self->serving) {
        PyErr_SetString(PyExc_RuntimeError, "cannot close the producer while it serves its reports");
        return NULL;
    }
    destroy(self);
    Py_RETURN_NONE;
}

static rd_kafka_topic_t *
topic_handle(Producer *self, PyObject *topic)
{
    PyObject *capsule = PyDict_GetItemWithError(self->topics, topic);
    if (capsule != NULL) {
        return PyCapsule_GetPointer(capsule, NULL);
    }
    if (PyErr_Occurred()) {
        return NULL;
    }
    const char *name = PyUnicode_AsUTF8(topic);
    if (name == NULL) {
        return NULL;
    }
    rd_kafka_topic_t *rkt = rk_api.topic_new(self->rk, name, NULL);
    if (rkt == NULL) {
        PyErr_Format(PyExc_ValueError, "librdkafka refused topic %R", topic);
        return NULL;
    }
    capsule = PyCapsule_New(rkt, NULL, NULL);
    if (capsule == NULL || PyDict_SetItem(self->topics, topic, capsule) < 0) {
        Py_XDECREF(capsule);
        rk_api.topic_destroy(rkt);
        return NULL;
    }
    Py_DECREF(capsule);
    return rkt;
}

#define MAX_HEADERS 16
#define MAX_PREFIX 56 /* an integer header's prefix; its value is the prefix and 8 bytes */

typedef struct {
    const char *name;
    const char *prefix;
    Py_ssize_t prefix_len;
    PyObject *numbers; /* a list or tuple, one int per record */
    char value[MAX_PREFIX + 8];
} IntHeader;

/* A sequence argument as a list or tuple of n items (None passes as NULL); *fast gets the new reference. */
static int
records_arg(PyObject *arg, const char *what, Py_ssize_t n, PyObject **fast)
{
    *fast = NULL;
    if (arg == Py_None) {
        return 0;
    }
    *fast = PySequence_Fast(arg, what);
    if (*fast == NULL) {
        return -1;
    }
    if (PySequence_Fast_GET_SIZE(*fast) != n) {
        PyErr_Format(PyExc_ValueError, "%s: %zd items for %zd values", what, PySequence_Fast_GET_SIZE(*fast), n);
        Py_CLEAR(*fast);
        return -1;
    }
    return 0;
}

#define RD_KAFKA_RESP_ERR__INVALID_ARG (-186)

/* Every value bytes, every key bytes or None, every partition and number an int: checked before anything is
 * queued, so bad input raises with nothing sent. */
static int
check_types(PyObject *values, PyObject *partitions, PyObject *keys, IntHeader *per_record, Py_ssize_t n_int,
            Py_ssize_t n)
{
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *value = PySequence_Fast_GET_ITEM(values, i);
        if (!PyBytes_Check(value)) {
            PyErr_Format(PyExc_TypeError, "values[%zd] is %.100s, not bytes", i, Py_TYPE(value)->tp_name);
            return -1;
        }
        if (keys != NULL) {
            PyObject *key = PySequence_Fast_GET_ITEM(keys, i);
            if (key != Py_None && !PyBytes_Check(key)) {
                PyErr_Format(PyExc_TypeError, "keys[%zd] is %.100s, not bytes or None", i, Py_TYPE(key)->tp_name);
                return -1;
            }
        }
        if (partitions != NULL && !PyLong_Check(PySequence_Fast_GET_ITEM(partitions, i))) {
            PyErr_Format(PyExc_TypeError, "partitions[%zd] is not an int", i);
            return -1;
        }
        for (Py_ssize_t h = 0; h < n_int; h++) {
            if (!PyLong_Check(PySequence_Fast_GET_ITEM(per_record[h].numbers, i))) {
                PyErr_Format(PyExc_TypeError, "int header %s: item %zd is not an int", per_record[h].name, i);
                return -1;
            }
        }
    }
    return 0;
}

/* A record that cannot be queued (an int out of range): the batch stops there, as at a full queue. */
static int
stop_at(Py_ssize_t i, const char *what, PyObject **reason)
{
    PyErr_Clear();
    PyObject *text = PyUnicode_FromFormat("%s[%zd] is out of range", what, i);
    if (text != NULL) {
        Py_SETREF(*reason, text);
    }
    return RD_KAFKA_RESP_ERR__INVALID_ARG;
}

/* Appends a header entry to vus for each (name, bytes) pair of headers (a list or a tuple); -1 with an
 * exception set when a pair is malformed. The entries point into the pairs: headers must outlive vus. */
static int
add_shared_headers(rd_kafka_vu_t *vus, size_t *cnt, PyObject *headers)
{
    for (Py_ssize_t h = 0; h < PySequence_Fast_GET_SIZE(headers); h++) {
        PyObject *pair = PySequence_Fast_GET_ITEM(headers, h);
        const char *name;
        const char *value;
        Py_ssize_t size;
        if (!PyTuple_Check(pair) || !PyArg_ParseTuple(pair, "sy#", &name, &value, &size)) {
            if (!PyErr_Occurred()) {
                PyErr_SetString(PyExc_TypeError, "headers must be (str, bytes) tuples");
            }
            return -1;
        }
        vus[*cnt].vtype = VTYPE_HEADER;
        vus[*cnt].u.header.name = name;
        vus[*cnt].u.header.val = value;
        vus[(*cnt)++].u.header.size = size;
    }
    return 0;
}

/*
 * produce_batch(topic, values, partitions, keys, headers, int_headers, tally) -> (queued, error code, reason)
 *
 * Queues values[i] (bytes) to partitions[i] (None: librdkafka's partitioner) with key keys[i] (keys None:
 * no key), the shared `headers` ((name, bytes) pairs) and, for each (name, prefix, numbers) of int_headers, a
 * header `name` of value prefix + numbers[i] as 8 bytes big-endian. Each record's report goes to `tally`.
 * Stops at the first record librdkafka refuses (a full queue among others): `queued` records were queued,
 * the error code and reason say why the next was not (0 and None when all were).
 */
static PyObject *
Producer_produce_batch(Producer *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 7) {
        PyErr_SetString(PyExc_TypeError, "produce_batch takes 7 arguments");
        return NULL;
    }
    PyObject *topic = args[0], *values_arg = args[1], *partitions_arg = args[2], *keys_arg = args[3],
             *headers_arg = args[4], *int_headers_arg = args[5], *tally = args[6];
    if (check_open(self) < 0) {
        return NULL;
    }
    if (!PyObject_TypeCheck(tally, tally_type)) {
        PyErr_Format(PyExc_TypeError, "the tally must be a psc.DeliveryTally, not %.100s", Py_TYPE(tally)->tp_name);
        return NULL;
    }
    if (!PyUnicode_Check(topic)) {
        PyErr_SetString(PyExc_TypeError, "topic must be a str");
        return NULL;
    }
    rd_kafka_topic_t *rkt = topic_handle(self, topic);
    if (rkt == NULL) {
        return NULL;
    }
    PyObject *values = NULL, *partitions = NULL, *keys = NULL, *headers = NULL, *int_headers = NULL;
    PyObject *result = NULL;
    IntHeader per_record[MAX_HEADERS];
    rd_kafka_vu_t vus[6 + MAX_HEADERS];
    Py_ssize_t n_int = 0, n_shared = 0, queued = 0;
    int code = 0;
    PyObject *reason = Py_NewRef(Py_None);

    values = PySequence_Fast(values_arg, "values must be a sequence of bytes");
    if (values == NULL) {
        goto done;
    }
    Py_ssize_t n = PySequence_Fast_GET_SIZE(values);
    if (records_arg(partitions_arg, "partitions", n, &partitions) < 0 || records_arg(keys_arg, "keys", n, &keys) < 0) {
        goto done;
    }
    headers = PySequence_Fast(headers_arg, "headers must be a sequence of (name, bytes) pairs");
    int_headers = headers == NULL ? NULL : PySequence_Fast(int_headers_arg, "int_headers must be a sequence");
    if (int_headers == NULL) {
        goto done;
    }
    n_shared = PySequence_Fast_GET_SIZE(headers);
    n_int = PySequence_Fast_GET_SIZE(int_headers);
    if (n_shared + n_int > MAX_HEADERS) {
        PyErr_Format(PyExc_ValueError, "at most %d headers per record", MAX_HEADERS);
        n_int = 0;
        goto done;
    }
    size_t cnt = 0;
    vus[cnt++].vtype = VTYPE_RKT;
    vus[0].u.rkt = rkt;
    size_t at_value = cnt;
    vus[cnt++].vtype = VTYPE_VALUE;
    size_t at_partition = cnt;
    vus[cnt].vtype = VTYPE_PARTITION;
    vus[cnt++].u.i32 = -1; /* RD_KAFKA_PARTITION_UA */
    size_t at_key = cnt;
    vus[cnt].vtype = VTYPE_KEY;
    vus[cnt].u.mem.ptr = NULL;
    vus[cnt++].u.mem.size = 0;
    vus[cnt].vtype = VTYPE_OPAQUE;
    vus[cnt++].u.ptr = tally;
    vus[cnt].vtype = VTYPE_MSGFLAGS;
    vus[cnt++].u.i = RD_KAFKA_MSG_F_COPY;
    if (add_shared_headers(vus, &cnt, headers) < 0) {
        n_int = 0;
        goto done;
    }
    for (Py_ssize_t h = 0; h < n_int; h++) {
        IntHeader *ih = &per_record[h];
        PyObject *numbers;
        if (!PyTuple_Check(PySequence_Fast_GET_ITEM(int_headers, h)) ||
            !PyArg_ParseTuple(PySequence_Fast_GET_ITEM(int_headers, h), "sy#O", &ih->name, &ih->prefix,
                              &ih->prefix_len, &numbers)) {
            if (!PyErr_Occurred()) {
                PyErr_SetString(PyExc_TypeError, "int_headers must be (str, bytes, ints) tuples");
            }
            n_int = h;
            goto done;
        }
        if (ih->prefix_len > MAX_PREFIX) {
            PyErr_Format(PyExc_ValueError, "header %s: prefix over %d bytes", ih->name, MAX_PREFIX);
            n_int = h;
            goto done;
        }
        if (records_arg(numbers, "int_headers numbers", n, &ih->numbers) < 0) {
            n_int = h;
            goto done;
        }
        memcpy(ih->value, ih->prefix, (size_t)ih->prefix_len);
        vus[cnt].vtype = VTYPE_HEADER;
        vus[cnt].u.header.name = ih->name;
        vus[cnt].u.header.val = ih->value;
        vus[cnt++].u.header.size = ih->prefix_len + 8;
    }
    if (check_types(values, partitions, keys, per_record, n_int, n) < 0) {
        goto done;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *value = PySequence_Fast_GET_ITEM(values, i);
        vus[at_value].u.mem.ptr = PyBytes_AS_STRING(value);
        vus[at_value].u.mem.size = (size_t)PyBytes_GET_SIZE(value);
        if (partitions != NULL) {
            long partition = PyLong_AsLong(PySequence_Fast_GET_ITEM(partitions, i));
            if ((partition == -1 && PyErr_Occurred()) || partition < -1 || partition > INT32_MAX) {
                code = stop_at(i, "partitions", &reason);
                break;
            }
            vus[at_partition].u.i32 = (int32_t)partition;
        }
        if (keys != NULL) {
            PyObject *key = PySequence_Fast_GET_ITEM(keys, i);
            if (key == Py_None) {
                vus[at_key].u.mem.ptr = NULL;
                vus[at_key].u.mem.size = 0;
            } else {
                vus[at_key].u.mem.ptr = PyBytes_AS_STRING(key);
                vus[at_key].u.mem.size = (size_t)PyBytes_GET_SIZE(key);
            }
        }
        for (Py_ssize_t h = 0; h < n_int; h++) {
            IntHeader *ih = &per_record[h];
            long long number = PyLong_AsLongLong(PySequence_Fast_GET_ITEM(ih->numbers, i));
            if (number == -1 && PyErr_Occurred()) {
                code = stop_at(i, ih->name, &reason);
                break;
            }
            unsigned long long bits = (unsigned long long)number;
            unsigned char *out = (unsigned char *)ih->value + ih->prefix_len;
            for (int b = 7; b >= 0; b--, bits >>= 8) {
                out[b] = (unsigned char)(bits & 0xff);
            }
        }
        if (code != 0) {
            break;
        }
        Py_INCREF(tally); /* the record's reference, released by its delivery report */
        rd_kafka_error_t *error = rk_api.produceva(self->rk, vus, cnt);
        if (error != NULL) {
            Py_DECREF(tally);
            code = rk_api.error_code(error);
            Py_SETREF(reason, PyUnicode_FromString(rk_api.error_string(error)));
            rk_api.error_destroy(error);
            if (reason == NULL) {
                goto done;
            }
            break;
        }
        queued++;
    }
    result = Py_BuildValue("niO", queued, code, reason);
done:
    for (Py_ssize_t h = 0; h < n_int; h++) {
        Py_XDECREF(per_record[h].numbers);
    }
    Py_XDECREF(reason);
    Py_XDECREF(values);
    Py_XDECREF(partitions);
    Py_XDECREF(keys);
    Py_XDECREF(headers);
    Py_XDECREF(int_headers);
    return result;
}

/* --- produce_slices: records that are slices of one buffer --------------------------------------- */

/* Keep a view of `buffer` in the tally: the buffer lives (and keeps its size) as long as the tally, which each
 * record queued without a copy holds until its report. */
static int
keep_buffer(DeliveryTally *tally, PyObject *buffer, const Py_buffer *data)
{
    if (tally->kept == NULL && (tally->kept = PyList_New(0)) == NULL) {
        return -1;
    }
    Py_ssize_t n = PyList_GET_SIZE(tally->kept);
    if (n > 0) {
        const Py_buffer *last = PyMemoryView_GET_BUFFER(PyList_GET_ITEM(tally->kept, n - 1));
        if (last->buf == data->buf && last->len >= data->len) {
            return 0; /* the same buffer again (a batch queued in several calls) */
        }
    }
    PyObject *view = PyMemoryView_FromObject(buffer);
    if (view == NULL) {
        return -1;
    }
    int appended = PyList_Append(tally->kept, view);
    Py_DECREF(view);
    return appended;
}

/* An int64 column argument (a C-contiguous buffer of 8-byte items): its view, and how many items it holds. */
static int
int64_column(PyObject *arg, const char *what, Py_buffer *view)
{
    if (PyObject_GetBuffer(arg, view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) {
        return -1;
    }
    const char *format = view->format == NULL ? "B" : view->format;
    if (format[0] == '@' || format[0] == '=') {
        format++;
    }
    if (view->itemsize != 8 || (strcmp(format, "q") != 0 && strcmp(format, "l") != 0)) {
        PyErr_Format(PyExc_TypeError, "%s must hold int64 items ('q'), not '%s'", what, view->format);
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

/*
 * produce_slices(topic, buffer, first, ends, sizes, sizes_before, partitions, headers, end_header, tally, copy)
 *     -> (queued, error code, reason)
 *
 * Queues one record per item of the int64 columns `ends` and `sizes`: record i's value is the bytes of
 * `buffer` from where record i-1 ended (`first` for record 0), sizes[i] - sizes[i-1] of them (`sizes` is a
 * running total that reached `sizes_before` before record 0); ends[i] must lie at or after the value's end.
 * partitions[i] (None: librdkafka's partitioner), the shared `headers` ((name, bytes) pairs) and, when
 * end_header is (name, prefix, base), a header `name` of value prefix + (base + ends[i]) as 8 bytes
 * big-endian: the record's end as an offset of the stream the buffer holds a part of. Each record's report
 * goes to `tally`. The records are queued with the GIL released. Stops at the first record librdkafka refuses,
 * as produce_batch does.
 *
 * With `copy` false librdkafka gets pointers into `buffer` instead of a copy of each value (a malloc and a
 * memcpy per record saved, and the bytes held once instead of twice). The tally then keeps a view of `buffer`
 * (see _tally.h), taken before anything is queued, and every record holds the tally until its report, so the
 * buffer stays alive and cannot be resized until the last record pointing into it is reported (delivered,
 * failed or purged), whatever the caller drops meanwhile. The caller must not write into it until then.
 */
static PyObject *
Producer_produce_slices(Producer *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 11) {
        PyErr_SetString(PyExc_TypeError, "produce_slices takes 11 arguments");
        return NULL;
    }
    PyObject *topic = args[0], *partitions_arg = args[6], *headers_arg = args[7], *end_header = args[8],
             *tally = args[9];
    Py_ssize_t first = PyLong_AsSsize_t(args[2]);
    long long sizes_before = PyLong_AsLongLong(args[5]);
    int copy = PyObject_IsTrue(args[10]);
    if (copy < 0 || PyErr_Occurred() || check_open(self) < 0) {
        return NULL;
    }
    if (!PyObject_TypeCheck(tally, tally_type)) {
        PyErr_Format(PyExc_TypeError, "the tally must be a psc.DeliveryTally, not %.100s", Py_TYPE(tally)->tp_name);
        return NULL;
    }
    if (!PyUnicode_Check(topic)) {
        PyErr_SetString(PyExc_TypeError, "topic must be a str");
        return NULL;
    }
    if (self->serving) {
        PyErr_SetString(PyExc_RuntimeError, "the producer is serving its reports (another thread or a hook)");
        return NULL;
    }
    rd_kafka_topic_t *rkt = topic_handle(self, topic);
    if (rkt == NULL) {
        return NULL;
    }
    Py_buffer data = {0}, ends = {0}, sizes = {0};
    PyObject *headers = NULL, *partitions = NULL, *result = NULL;
    int32_t *partition_of = NULL;
    const char *end_name = NULL, *end_prefix = NULL;
    Py_ssize_t end_prefix_len = 0;
    long long end_base = 0;
    char end_value[MAX_PREFIX + 8];
    if (PyObject_GetBuffer(args[1], &data, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    if (int64_column(args[3], "ends", &ends) < 0) {
        goto done;
    }
    if (int64_column(args[4], "sizes", &sizes) < 0) {
        goto done;
    }
    Py_ssize_t n = ends.len / 8;
    const int64_t *end_at = ends.buf, *size_at = sizes.buf;
    if (sizes.len / 8 != n) {
        PyErr_Format(PyExc_ValueError, "sizes: %zd items for %zd ends", sizes.len / 8, n);
        goto done;
    }
    /* Every slice inside the buffer: checked before anything is queued, so bad input raises with nothing sent. */
    int64_t start = first, before = sizes_before;
    for (Py_ssize_t i = 0; i < n; i++) {
        int64_t size = size_at[i] - before;
        if (start < 0 || size < 0 || start + size > end_at[i] || end_at[i] > data.len) {
            PyErr_Format(PyExc_ValueError, "record %zd (%lld bytes from %lld, ending at %lld) is not inside the %zd "
                         "bytes of the buffer", i, (long long)size, (long long)start, (long long)end_at[i], data.len);
            goto done;
        }
        start = end_at[i];
        before = size_at[i];
    }
    if (records_arg(partitions_arg, "partitions", n, &partitions) < 0) {
        goto done;
    }
    if (partitions != NULL) {
        partition_of = PyMem_Malloc((size_t)(n ? n : 1) * sizeof(int32_t));
        if (partition_of == NULL) {
            PyErr_NoMemory();
            goto done;
        }
        for (Py_ssize_t i = 0; i < n; i++) {
            long partition = PyLong_AsLong(PySequence_Fast_GET_ITEM(partitions, i));
            if ((partition == -1 && PyErr_Occurred()) || partition < -1 || partition > INT32_MAX) {
                PyErr_Clear();
                PyErr_Format(PyExc_ValueError, "partitions[%zd] is not a partition", i);
                goto done;
            }
            partition_of[i] = (int32_t)partition;
        }
    }
    /* A tuple of (name, bytes) tuples: nothing another thread does while the GIL is released can free them. */
    headers = PySequence_Tuple(headers_arg);
    if (headers == NULL) {
        goto done;
    }
    Py_ssize_t n_shared = PyTuple_GET_SIZE(headers);
    if (n_shared + 1 > MAX_HEADERS) {
        PyErr_Format(PyExc_ValueError, "at most %d headers per record", MAX_HEADERS);
        goto done;
    }
    rd_kafka_vu_t vus[6 + MAX_HEADERS];
    size_t cnt = 0;
    vus[cnt].vtype = VTYPE_RKT;
    vus[cnt++].u.rkt = rkt;
    size_t at_value = cnt;
    vus[cnt++].vtype = VTYPE_VALUE;
    size_t at_partition = cnt;
    vus[cnt].vtype = VTYPE_PARTITION;
    vus[cnt++].u.i32 = -1; /* RD_KAFKA_PARTITION_UA */
    vus[cnt].vtype = VTYPE_OPAQUE;
    vus[cnt++].u.ptr = tally;
    vus[cnt].vtype = VTYPE_MSGFLAGS;
    vus[cnt++].u.i = copy ? RD_KAFKA_MSG_F_COPY : 0;
    if (add_shared_headers(vus, &cnt, headers) < 0) {
        goto done;
    }
    size_t at_end = 0;
    if (end_header != Py_None) {
        if (!PyTuple_Check(end_header) ||
            !PyArg_ParseTuple(end_header, "sy#L", &end_name, &end_prefix, &end_prefix_len, &end_base)) {
            if (!PyErr_Occurred()) {
                PyErr_SetString(PyExc_TypeError, "end_header must be None or a (str, bytes, int) tuple");
            }
            goto done;
        }
        if (end_prefix_len > MAX_PREFIX) {
            PyErr_Format(PyExc_ValueError, "header %s: prefix over %d bytes", end_name, MAX_PREFIX);
            goto done;
        }
        memcpy(end_value, end_prefix, (size_t)end_prefix_len);
        at_end = cnt;
        vus[cnt].vtype = VTYPE_HEADER;
        vus[cnt].u.header.name = end_name;
        vus[cnt].u.header.val = end_value;
        vus[cnt++].u.header.size = end_prefix_len + 8;
    }
    if (!copy && n > 0 && keep_buffer((DeliveryTally *)tally, args[1], &data) < 0) {
        goto done;
    }
    Py_ssize_t queued = 0;
    rd_kafka_error_t *error = NULL;
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_INCREF(tally); /* each record's reference, released by its delivery report */
    }
    self->serving = 1; /* no poll, flush or close from another thread while records are queued */
    release_gil(self);
    start = first;
    before = sizes_before;
    for (; queued < n; queued++) {
        vus[at_value].u.mem.ptr = (char *)data.buf + start;
        vus[at_value].u.mem.size = (size_t)(size_at[queued] - before);
        if (partition_of != NULL) {
            vus[at_partition].u.i32 = partition_of[queued];
        }
        if (at_end) {
            unsigned long long bits = (unsigned long long)(end_base + end_at[queued]);
            unsigned char *out = (unsigned char *)end_value + end_prefix_len;
            for (int b = 7; b >= 0; b--, bits >>= 8) {
                out[b] = (unsigned char)(bits & 0xff);
            }
        }
        error = rk_api.produceva(self->rk, vus, cnt);
        if (error != NULL) {
            break;
        }
        start = end_at[queued];
        before = size_at[queued];
    }
    reacquire_gil(self);
    self->serving = 0;
    for (Py_ssize_t i = queued; i < n; i++) {
        Py_DECREF(tally); /* records not queued are not reported */
    }
    if (error != NULL) {
        int code = rk_api.error_code(error);
        PyObject *reason = PyUnicode_FromString(rk_api.error_string(error));
        rk_api.error_destroy(error);
        if (reason != NULL) {
            result = Py_BuildValue("niN", queued, code, reason);
        }
    } else {
        result = Py_BuildValue("niO", queued, 0, Py_None);
    }
done:
    PyMem_Free(partition_of);
    Py_XDECREF(partitions);
    Py_XDECREF(headers);
    if (sizes.obj != NULL) {
        PyBuffer_Release(&sizes);
    }
    if (ends.obj != NULL) {
        PyBuffer_Release(&ends);
    }
    PyBuffer_Release(&data);
    return result;
}

/* --- end of produce_slices ------------------------------------------------------------------------- */

static int
Producer_traverse(Producer *self, visitproc visit, void *arg)
{
    Py_VISIT(self->on_failure);
    Py_VISIT(self->on_error);
    Py_VISIT(self->on_log);
    return 0;
}

static int
Producer_clear(Producer *self)
{
    Py_CLEAR(self->on_failure);
    Py_CLEAR(self->on_error);
    Py_CLEAR(self->on_log);
    return 0;
}

static void
Producer_dealloc(Producer *self)
{
    PyObject_GC_UnTrack(self);
    destroy(self);
    Producer_clear(self);
    Py_CLEAR(self->topics);
    Py_CLEAR(self->hook_exc[0]);
    Py_CLEAR(self->hook_exc[1]);
    Py_CLEAR(self->hook_exc[2]);
    free(self->unreferenced);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMethodDef Producer_methods[] = {
    {"produce_batch", (PyCFunction)(void (*)(void))Producer_produce_batch, METH_FASTCALL,
     "produce_batch(topic, values, partitions, keys, headers, int_headers, tally) -> (queued, code, reason)"},
    {"produce_slices", (PyCFunction)(void (*)(void))Producer_produce_slices, METH_FASTCALL,
     "produce_slices(topic, buffer, first, ends, sizes, sizes_before, partitions, headers, end_header, tally, copy) "
     "-> (queued, code, reason)"},
    {"poll", (PyCFunction)Producer_poll, METH_O, "poll(timeout_s) -> events served"},
    {"flush", (PyCFunction)Producer_flush, METH_O, "flush(timeout_s; negative: none) -> records left; queued records go without lingering"},
    {"purge", (PyCFunction)Producer_purge, METH_VARARGS, "purge(in_queue, in_flight, blocking)"},
    {"close", (PyCFunction)Producer_close, METH_NOARGS, "destroy the client; unreported records are dropped"},
    {NULL},
};

static PySequenceMethods Producer_as_sequence = {
    .sq_length = (lenfunc)Producer_len,
};

static PyTypeObject Producer_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "psc._rdkafka.Producer",
    .tp_doc = "Producer(config, on_failure, on_error, on_log): a librdkafka producer that queues batches in C.",
    .tp_basicsize = sizeof(Producer),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Producer_init,
    .tp_dealloc = (destructor)Producer_dealloc,
    .tp_traverse = (traverseproc)Producer_traverse,
    .tp_clear = (inquiry)Producer_clear,
    .tp_methods = Producer_methods,
    .tp_as_sequence = &Producer_as_sequence,
};

static PyMethodDef module_methods[] = {
    {"load", (PyCFunction)load, METH_O, "load(path) -> version: load librdkafka from path (once per process)"},
    {NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    "psc._rdkafka",
    "A Kafka producer that queues whole batches in C, over librdkafka loaded at run time.",
    -1,
    module_methods,
};

PyMODINIT_FUNC
PyInit__rdkafka(void)
{
    PyObject *speedups = PyImport_ImportModule("psc._speedups");
    if (speedups == NULL) {
        return NULL;
    }
    tally_type = (PyTypeObject *)PyObject_GetAttrString(speedups, "DeliveryTally");
    Py_DECREF(speedups);
    if (tally_type == NULL) {
        return NULL;
    }
    if (!PyType_Check(tally_type) || tally_type->tp_basicsize != sizeof(DeliveryTally)) {
        PyErr_SetString(PyExc_ImportError, "psc._speedups.DeliveryTally does not match psc/_tally.h");
        return NULL;
    }
    if (PyType_Ready(&Producer_Type) < 0) {
        return NULL;
    }
    PyObject *module = PyModule_Create(&module_def);
    if (module == NULL) {
        return NULL;
    }
    if (PyModule_AddObjectRef(module, "Producer", (PyObject *)&Producer_Type) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
