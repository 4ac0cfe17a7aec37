/*
 * Loading librdkafka at run time, shared by psc/_rdkafka.c and psc/_failure_trap.c: dlopen() the library at a
 * path and resolve the symbols a module uses into its own table of function pointers.
 */
#ifndef PSC_RDKAFKA_LOAD_H
#define PSC_RDKAFKA_LOAD_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <dlfcn.h>

typedef struct {
    const char *name;
    void **slot;
} rk_symbol;

#define RK_SYMBOL(table, field, name) {name, (void **)&(table).field}

/* The dlopen() handle of the librdkafka at path (a str or path-like) with every symbol resolved, or NULL with
 * ImportError set (and nothing kept open). */
static void *
rk_load(PyObject *path_arg, const rk_symbol *symbols, size_t n_symbols)
{
    PyObject *path = NULL;
    if (!PyUnicode_FSConverter(path_arg, &path)) {
        return NULL;
    }
    void *handle = dlopen(PyBytes_AS_STRING(path), RTLD_NOW | RTLD_LOCAL);
    Py_DECREF(path);
    if (handle == NULL) {
        PyErr_Format(PyExc_ImportError, "cannot load librdkafka: %s", dlerror());
        return NULL;
    }
    for (size_t i = 0; i < n_symbols; i++) {
        *symbols[i].slot = dlsym(handle, symbols[i].name);
        if (*symbols[i].slot == NULL) {
            PyErr_Format(PyExc_ImportError, "librdkafka lacks %s", symbols[i].name);
            dlclose(handle);
            return NULL;
        }
    }
    return handle;
}

#endif
