/*
 * memq._speedups: the per-record hot paths of the MemQ producer, in C.
 *
 * At 100-byte records the Python around each record costs more than compressing it, so the common cases are
 * answered here:
 *
 * - OpenBase: the columns and sizes of a request being filled (memq._producer._Open extends it).
 * - ProducerBase: the fields of the producer that produce() reads and its fast path: a record without
 *   headers or its own report, of bytes, joining its topic's open request with room in it and in flight.
 *   Anything else goes to the Python method _append(), which stays the specification. The producer's lock
 *   is held as in Python, so Python code under the lock sees the same states it would see without C.
 *   psc_produce() is the same with the arguments of PSC's backend produce(), which PSC calls directly.
 * - encode_plain(): the body of a request of records without headers, byte for byte what
 *   memq._format.encode_records writes, copied with the GIL released.
 *
 * memq/_fallback.py implements the same names in Python for builds without a C compiler.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <string.h>
#include <time.h>

#define RECORD_FIXED 21 /* int16 internal length, int64 timestamp, int8 id length, int16 headers length,
                           int32 key length, int32 value length */
#define MAX_INT32 0x7FFFFFFF

static PyObject *str_append, *str_acquire, *str_release, *empty_tuple, *empty_bytes;

/* --- OpenBase ---------------------------------------------------------------------------------------- */

typedef struct {
    PyObject_HEAD
    PyObject *values;  /* list of bytes */
    PyObject *keys;    /* list of bytes or None */
    PyObject *stamps;  /* list of int (ms) */
    PyObject *headers; /* None, or a list of header tuples, one per record */
    PyObject *reports; /* None, or a list of reports (or None), one per record */
    Py_ssize_t size;   /* uncompressed record bytes */
    Py_ssize_t capacity;
    char sealed;
} OpenBase;

static int
OpenBase_traverse(OpenBase *self, visitproc visit, void *arg)
{
    Py_VISIT(self->values);
    Py_VISIT(self->keys);
    Py_VISIT(self->stamps);
    Py_VISIT(self->headers);
    Py_VISIT(self->reports);
    return 0;
}

static int
OpenBase_clear(OpenBase *self)
{
    Py_CLEAR(self->values);
    Py_CLEAR(self->keys);
    Py_CLEAR(self->stamps);
    Py_CLEAR(self->headers);
    Py_CLEAR(self->reports);
    return 0;
}

static void
OpenBase_dealloc(OpenBase *self)
{
    PyObject_GC_UnTrack(self);
    OpenBase_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMemberDef OpenBase_members[] = {
    {"values", T_OBJECT, offsetof(OpenBase, values), 0, "the records' values"},
    {"keys", T_OBJECT, offsetof(OpenBase, keys), 0, "the records' keys (bytes or None)"},
    {"stamps", T_OBJECT, offsetof(OpenBase, stamps), 0, "the records' timestamps (ms)"},
    {"headers", T_OBJECT, offsetof(OpenBase, headers), 0, "None, or the records' headers"},
    {"reports", T_OBJECT, offsetof(OpenBase, reports), 0, "None, or the records' own reports"},
    {"size", T_PYSSIZET, offsetof(OpenBase, size), 0, "uncompressed record bytes"},
    {"capacity", T_PYSSIZET, offsetof(OpenBase, capacity), 0, "record bytes the request can carry"},
    {"sealed", T_BOOL, offsetof(OpenBase, sealed), 0, "no more records join it"},
    {NULL},
};

static PyTypeObject OpenBase_Type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "memq._speedups.OpenBase",
    .tp_basicsize = sizeof(OpenBase),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "The columns and sizes of a request being filled, which ProducerBase.produce() appends to.",
    .tp_new = PyType_GenericNew,
    .tp_traverse = (traverseproc)OpenBase_traverse,
    .tp_clear = (inquiry)OpenBase_clear,
    .tp_dealloc = (destructor)OpenBase_dealloc,
    .tp_members = OpenBase_members,
};

/* --- ProducerBase ------------------------------------------------------------------------------------ */

typedef struct {
    PyObject_HEAD
    PyObject *open;        /* dict: topic -> OpenBase being filled */
    PyObject *lock;        /* threading.Lock guarding everything here */
    PyObject *locked;      /* the lock whose methods are cached below */
    PyObject *acquire;     /* lock.acquire */
    PyObject *release;     /* lock.release */
    Py_ssize_t buffered;   /* bytes of records produced and not yet answered */
    Py_ssize_t unanswered; /* records produced and not yet answered */
    Py_ssize_t max_buffered;
} ProducerBase;

static int
ProducerBase_traverse(ProducerBase *self, visitproc visit, void *arg)
{
    Py_VISIT(self->open);
    Py_VISIT(self->lock);
    Py_VISIT(self->locked);
    Py_VISIT(self->acquire);
    Py_VISIT(self->release);
    return 0;
}

static int
ProducerBase_clear(ProducerBase *self)
{
    Py_CLEAR(self->open);
    Py_CLEAR(self->lock);
    Py_CLEAR(self->locked);
    Py_CLEAR(self->acquire);
    Py_CLEAR(self->release);
    return 0;
}

static void
ProducerBase_dealloc(ProducerBase *self)
{
    PyObject_GC_UnTrack(self);
    ProducerBase_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* lock.acquire and lock.release, looked up once per lock. */
static int
cache_lock(ProducerBase *self)
{
    if (self->lock == self->locked && self->acquire != NULL) {
        return 0;
    }
    if (self->lock == NULL) {
        return -1;
    }
    PyObject *acquire = PyObject_GetAttr(self->lock, str_acquire);
    PyObject *release = acquire ? PyObject_GetAttr(self->lock, str_release) : NULL;
    if (release == NULL) {
        Py_XDECREF(acquire);
        return -1;
    }
    Py_XSETREF(self->acquire, acquire);
    Py_XSETREF(self->release, release);
    Py_INCREF(self->lock);
    Py_XSETREF(self->locked, self->lock);
    return 0;
}

static int
call_lock(PyObject *method)
{
    PyObject *result = PyObject_CallNoArgs(method);
    if (result == NULL) {
        return -1;
    }
    Py_DECREF(result);
    return 0;
}

static long long
now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Appends the record to `pending` (lock held): 1 done, 0 it does not fit (nothing changed), -1 error. */
static int
append_record(ProducerBase *self, OpenBase *pending, PyObject *value, PyObject *key, PyObject *stamp,
              Py_ssize_t size)
{
    if (pending->size + size > pending->capacity || self->buffered + size > self->max_buffered ||
        !PyList_CheckExact(pending->values) || !PyList_CheckExact(pending->keys) ||
        !PyList_CheckExact(pending->stamps) || (pending->headers != Py_None && !PyList_CheckExact(pending->headers)) ||
        (pending->reports != Py_None && !PyList_CheckExact(pending->reports))) {
        return 0;
    }
    Py_ssize_t count = PyList_GET_SIZE(pending->values);
    if (PyList_GET_SIZE(pending->keys) != count || PyList_GET_SIZE(pending->stamps) != count) {
        return 0;
    }
    PyObject *columns[5] = {pending->values, pending->keys, pending->stamps, pending->headers, pending->reports};
    PyObject *items[5] = {value, key, stamp, empty_tuple, Py_None};
    for (int i = 0; i < 5; i++) {
        if (columns[i] != Py_None && PyList_Append(columns[i], items[i]) < 0) {
            for (int j = 0; j < i; j++) { /* leave the columns as they were */
                if (columns[j] != Py_None) {
                    PyList_SetSlice(columns[j], PyList_GET_SIZE(columns[j]) - 1, PyList_GET_SIZE(columns[j]), NULL);
                }
            }
            return -1;
        }
    }
    pending->size += size;
    self->buffered += size;
    self->unanswered += 1;
    return 1;
}

/* Fills slots[] (NULL: not given) from a vectorcall with the parameters `names`; -1 (TypeError) if it does
 * not fit them. */
static int
parse_args(PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames, const char *const *names, int count,
           PyObject **slots)
{
    if (nargs > count) {
        PyErr_Format(PyExc_TypeError, "produce() takes at most %d arguments (%zd given)", count, nargs);
        return -1;
    }
    for (Py_ssize_t i = 0; i < nargs; i++) {
        slots[i] = args[i];
    }
    Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
    for (Py_ssize_t k = 0; k < nkw; k++) {
        PyObject *name = PyTuple_GET_ITEM(kwnames, k);
        int found = 0;
        for (int i = 0; i < count && !found; i++) {
            if (PyUnicode_CompareWithASCIIString(name, names[i]) == 0) {
                if (slots[i] != NULL) {
                    PyErr_Format(PyExc_TypeError, "produce() got multiple values for argument '%s'", names[i]);
                    return -1;
                }
                slots[i] = args[nargs + k];
                found = 1;
            }
        }
        if (!found) {
            PyErr_Format(PyExc_TypeError, "produce() got an unexpected keyword argument '%U'", name);
            return -1;
        }
    }
    return 0;
}

static PyObject *produce_record(ProducerBase *self, PyObject *topic, PyObject *value, PyObject *key,
                                PyObject *headers, PyObject *timestamp, PyObject *report);

/* produce(topic, value, key=None, headers=None, timestamp=0, on_delivery=None) */
static const char *const produce_names[] = {"topic", "value", "key", "headers", "timestamp", "on_delivery"};

static PyObject *
ProducerBase_produce(ProducerBase *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    PyObject *slots[6] = {NULL};
    if (parse_args(args, nargs, kwnames, produce_names, 6, slots) < 0) {
        return NULL;
    }
    if (slots[0] == NULL || slots[1] == NULL) {
        PyErr_SetString(PyExc_TypeError, "produce() needs a topic and a value");
        return NULL;
    }
    return produce_record(self, slots[0], slots[1], slots[2] ? slots[2] : Py_None, slots[3] ? slots[3] : Py_None,
                          slots[4], slots[5] ? slots[5] : Py_None);
}

/* psc_produce(topic, value=None, key=None, partition=-1, on_delivery=None, timestamp=0, headers=None): PSC's
 * backend produce() (confluent-kafka's order); a missing value is an empty one, the partition is ignored. */
static const char *const psc_names[] = {"topic", "value", "key", "partition", "on_delivery", "timestamp", "headers"};

static PyObject *
ProducerBase_psc_produce(ProducerBase *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    PyObject *slots[7] = {NULL};
    if (parse_args(args, nargs, kwnames, psc_names, 7, slots) < 0) {
        return NULL;
    }
    if (slots[0] == NULL) {
        PyErr_SetString(PyExc_TypeError, "produce() needs a topic");
        return NULL;
    }
    PyObject *value = slots[1] == NULL || slots[1] == Py_None ? empty_bytes : slots[1];
    return produce_record(self, slots[0], value, slots[2] ? slots[2] : Py_None, slots[6] ? slots[6] : Py_None,
                          slots[5], slots[4] ? slots[4] : Py_None);
}

/* The record (timestamp NULL: not given) joins its topic's open request, or goes to self._append(). */
static PyObject *
produce_record(ProducerBase *self, PyObject *topic, PyObject *value, PyObject *key, PyObject *headers,
               PyObject *timestamp, PyObject *report)
{
    long long stamp = 0;
    int plain = headers == Py_None && report == Py_None && PyBytes_CheckExact(value) &&
                (key == Py_None || PyBytes_CheckExact(key)) && (timestamp == NULL || PyLong_CheckExact(timestamp)) &&
                self->open != NULL && PyDict_CheckExact(self->open);
    if (plain && timestamp != NULL) {
        int overflow;
        stamp = PyLong_AsLongLongAndOverflow(timestamp, &overflow);
        plain = !overflow && !(stamp == -1 && PyErr_Occurred());
        PyErr_Clear();
    }
    if (plain && cache_lock(self) < 0) {
        PyErr_Clear();
        plain = 0;
    }
    if (plain) {
        Py_ssize_t size = RECORD_FIXED + PyBytes_GET_SIZE(value) + (key == Py_None ? 0 : PyBytes_GET_SIZE(key));
        PyObject *stamp_obj = PyLong_FromLongLong(stamp ? stamp : now_ms());
        if (stamp_obj == NULL) {
            return NULL;
        }
        PyObject *acquire = self->acquire, *release = self->release;
        Py_INCREF(acquire);
        Py_INCREF(release);
        PyObject *open = Py_NewRef(self->open);
        int done = call_lock(acquire);
        if (done == 0) {
            /* Held while appending: an allocation may run a finalizer, which may let other threads run. */
            PyObject *pending = Py_XNewRef(PyDict_GetItemWithError(open, topic));
            if (pending != NULL && PyObject_TypeCheck(pending, &OpenBase_Type)) {
                done = append_record(self, (OpenBase *)pending, value, key, stamp_obj, size);
            }
            else {
                done = PyErr_Occurred() ? -1 : 0;
            }
            Py_XDECREF(pending);
            PyObject *type, *exc, *traceback;
            PyErr_Fetch(&type, &exc, &traceback);
            if (call_lock(release) < 0) {
                done = -1;
                Py_XDECREF(type);
                Py_XDECREF(exc);
                Py_XDECREF(traceback);
            }
            else {
                PyErr_Restore(type, exc, traceback);
            }
        }
        Py_DECREF(open);
        Py_DECREF(acquire);
        Py_DECREF(release);
        Py_DECREF(stamp_obj);
        if (done == 1) {
            Py_RETURN_NONE;
        }
        if (done < 0) {
            if (!PyErr_ExceptionMatches(PyExc_TypeError)) { /* an unhashable topic: Python says so below */
                return NULL;
            }
            PyErr_Clear();
        }
    }
    PyObject *zero = NULL;
    if (timestamp == NULL) {
        timestamp = zero = PyLong_FromLong(0);
        if (zero == NULL) {
            return NULL;
        }
    }
    PyObject *call[7] = {(PyObject *)self, topic, value, key, headers, timestamp, report};
    PyObject *result = PyObject_VectorcallMethod(str_append, call, 7, NULL);
    Py_XDECREF(zero);
    if (result == NULL) {
        return NULL;
    }
    Py_DECREF(result);
    Py_RETURN_NONE;
}

static PyMethodDef ProducerBase_methods[] = {
    {"produce", (PyCFunction)(void (*)(void))ProducerBase_produce, METH_FASTCALL | METH_KEYWORDS,
     "produce(topic, value, key=None, headers=None, timestamp=0, on_delivery=None): queue a record; "
     "on_delivery(err, record) runs in a later poll or flush."},
    {"psc_produce", (PyCFunction)(void (*)(void))ProducerBase_psc_produce, METH_FASTCALL | METH_KEYWORDS,
     "psc_produce(topic, value=None, key=None, partition=-1, on_delivery=None, timestamp=0, headers=None): "
     "produce() with the arguments of PSC's backend produce(); no value is an empty one."},
    {NULL},
};

static PyMemberDef ProducerBase_members[] = {
    {"_open", T_OBJECT, offsetof(ProducerBase, open), 0, "topic -> request being filled"},
    {"_lock", T_OBJECT, offsetof(ProducerBase, lock), 0, "guards the fields here and the open requests"},
    {"_buffered", T_PYSSIZET, offsetof(ProducerBase, buffered), 0, "bytes of records not yet answered"},
    {"_unanswered", T_PYSSIZET, offsetof(ProducerBase, unanswered), 0, "records not yet answered"},
    {"_max_buffered", T_PYSSIZET, offsetof(ProducerBase, max_buffered), 0, "max_inflight_bytes"},
    {NULL},
};

static PyTypeObject ProducerBase_Type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "memq._speedups.ProducerBase",
    .tp_basicsize = sizeof(ProducerBase),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "The producer's fields that produce() reads, and produce()'s fast path.",
    .tp_new = PyType_GenericNew,
    .tp_traverse = (traverseproc)ProducerBase_traverse,
    .tp_clear = (inquiry)ProducerBase_clear,
    .tp_dealloc = (destructor)ProducerBase_dealloc,
    .tp_members = ProducerBase_members,
    .tp_methods = ProducerBase_methods,
};

/* --- encode_plain ------------------------------------------------------------------------------------ */

typedef struct {
    const char *value, *key;
    Py_ssize_t value_size, key_size;
    long long stamp;
} Field;

static void
put_be(char *out, unsigned long long value, int bytes)
{
    for (int i = bytes - 1; i >= 0; i--) {
        out[i] = (char)(value & 0xFF);
        value >>= 8;
    }
}

/* encode_plain(values, keys, timestamps): the body, or None when a column holds something else than bytes
 * (values), bytes or None (keys) and int64 (timestamps), or a length does not fit; Python then decides. */
static PyObject *
encode_plain(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "encode_plain(values, keys, timestamps)");
        return NULL;
    }
    /* Tuples of the columns: the items stay referenced (and immutable) while the GIL is released. */
    PyObject *columns[3] = {NULL, NULL, NULL};
    PyObject *result = NULL;
    Field *fields = NULL;
    for (int c = 0; c < 3; c++) {
        columns[c] = PySequence_Tuple(args[c]);
        if (columns[c] == NULL) {
            goto done;
        }
    }
    Py_ssize_t count = PyTuple_GET_SIZE(columns[0]);
    if (PyTuple_GET_SIZE(columns[1]) != count || PyTuple_GET_SIZE(columns[2]) != count) {
        result = Py_NewRef(Py_None);
        goto done;
    }
    fields = PyMem_Malloc(sizeof(Field) * (count ? count : 1));
    if (fields == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    Py_ssize_t total = 0;
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *value = PyTuple_GET_ITEM(columns[0], i), *key = PyTuple_GET_ITEM(columns[1], i);
        PyObject *stamp = PyTuple_GET_ITEM(columns[2], i);
        if (!PyBytes_CheckExact(value) || (key != Py_None && !PyBytes_CheckExact(key)) || !PyLong_CheckExact(stamp)) {
            result = Py_NewRef(Py_None);
            goto done;
        }
        int overflow;
        fields[i].stamp = PyLong_AsLongLongAndOverflow(stamp, &overflow);
        if (overflow || (fields[i].stamp == -1 && PyErr_Occurred())) {
            PyErr_Clear();
            result = Py_NewRef(Py_None);
            goto done;
        }
        fields[i].value = PyBytes_AS_STRING(value);
        fields[i].value_size = PyBytes_GET_SIZE(value);
        fields[i].key = key == Py_None ? "" : PyBytes_AS_STRING(key);
        fields[i].key_size = key == Py_None ? 0 : PyBytes_GET_SIZE(key);
        if (fields[i].value_size > MAX_INT32 || fields[i].key_size > MAX_INT32) {
            result = Py_NewRef(Py_None);
            goto done;
        }
        total += RECORD_FIXED + fields[i].value_size + fields[i].key_size;
    }
    result = PyBytes_FromStringAndSize(NULL, total);
    if (result == NULL) {
        goto done;
    }
    char *out = PyBytes_AS_STRING(result);
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < count; i++) {
        const Field *f = &fields[i];
        put_be(out, 11, 2); /* internal fields: timestamp, id length, headers length */
        put_be(out + 2, (unsigned long long)f->stamp, 8);
        out[10] = 0;        /* no message id */
        put_be(out + 11, 0, 2); /* no headers */
        put_be(out + 13, (unsigned long long)f->key_size, 4);
        memcpy(out + 17, f->key, f->key_size);
        out += 17 + f->key_size;
        put_be(out, (unsigned long long)f->value_size, 4);
        memcpy(out + 4, f->value, f->value_size);
        out += 4 + f->value_size;
    }
    Py_END_ALLOW_THREADS
done:
    PyMem_Free(fields);
    for (int c = 0; c < 3; c++) {
        Py_XDECREF(columns[c]);
    }
    return result;
}

/* --- module ------------------------------------------------------------------------------------------ */

static PyMethodDef module_methods[] = {
    {"encode_plain", (PyCFunction)(void (*)(void))encode_plain, METH_FASTCALL,
     "encode_plain(values, keys, timestamps): the body of records without headers, or None (Python decides)."},
    {NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    .m_name = "memq._speedups",
    .m_doc = "The per-record hot paths of the MemQ producer, in C.",
    .m_size = -1,
    .m_methods = module_methods,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    str_append = PyUnicode_InternFromString("_append");
    str_acquire = PyUnicode_InternFromString("acquire");
    str_release = PyUnicode_InternFromString("release");
    empty_tuple = PyTuple_New(0);
    empty_bytes = PyBytes_FromStringAndSize("", 0);
    if (str_append == NULL || str_acquire == NULL || str_release == NULL || empty_tuple == NULL || empty_bytes == NULL ||
        PyType_Ready(&OpenBase_Type) < 0 || PyType_Ready(&ProducerBase_Type) < 0) {
        return NULL;
    }
    PyObject *module = PyModule_Create(&module_def);
    if (module == NULL) {
        return NULL;
    }
    if (PyModule_AddObjectRef(module, "OpenBase", (PyObject *)&OpenBase_Type) < 0 ||
        PyModule_AddObjectRef(module, "ProducerBase", (PyObject *)&ProducerBase_Type) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
