/*
 * singer._speedups: the text reader's line splitting, in C (singer/_fallback.py has the same in Python).
 *
 * split(buffer, start, keep_newline, limit, first_cut) finds every line of buffer[start:] that a newline ends,
 * without making an object per line: it returns the lines as two int64 columns, where each line ends (the
 * byte after its newline) and the running total of value sizes, so line i's value is
 * buffer[ends[i-1]:ends[i-1] + size_i] (buffer[start:...] for the first). A line over `limit` bytes (its
 * newline not counted) is cut to `limit`; when the newline is kept it is written over the byte after the cut,
 * so the value stays a slice of the buffer (the bytes cut off are dropped anyway). `first_cut` bytes were
 * already cut from the first line (an unterminated line held over from the previous read).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

static PyObject *
split(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    Py_ssize_t start, limit, first_cut;
    int keep;
    if (nargs != 5) {
        PyErr_SetString(PyExc_TypeError, "split takes 5 arguments: buffer, start, keep_newline, limit, first_cut");
        return NULL;
    }
    start = PyLong_AsSsize_t(args[1]);
    keep = PyObject_IsTrue(args[2]);
    limit = PyLong_AsSsize_t(args[3]);
    first_cut = PyLong_AsSsize_t(args[4]);
    if (PyErr_Occurred() || keep < 0) {
        return NULL;
    }
    Py_buffer view;
    if (PyObject_GetBuffer(args[0], &view, PyBUF_WRITABLE) < 0) {
        return NULL;
    }
    PyObject *result = NULL, *ends = NULL, *sizes = NULL;
    char *data = view.buf;
    Py_ssize_t size = view.len;
    if (start < 0 || start > size || limit < 0 || first_cut < 0) {
        PyErr_Format(PyExc_ValueError, "split: start %zd, limit %zd, first_cut %zd out of range for %zd bytes", start,
                     limit, first_cut, size);
        goto done;
    }
    Py_ssize_t count = 0;
    for (char *p = data + start, *end = data + size; (p = memchr(p, '\n', (size_t)(end - p))) != NULL; p++) {
        count++;
    }
    ends = PyBytes_FromStringAndSize(NULL, count * 8);
    sizes = PyBytes_FromStringAndSize(NULL, count * 8);
    if (ends == NULL || sizes == NULL) {
        goto done;
    }
    int64_t *end_at = (int64_t *)PyBytes_AS_STRING(ends), *total_at = (int64_t *)PyBytes_AS_STRING(sizes);
    Py_ssize_t line = start, truncated = 0, truncated_bytes = 0, cut = first_cut;
    int64_t total = 0;
    for (Py_ssize_t i = 0; i < count; i++) {
        char *newline = memchr(data + line, '\n', (size_t)(size - line));
        Py_ssize_t length = newline - (data + line), value = length + keep;
        if (length > limit) {
            cut += length - limit;
            value = limit + keep;
            if (keep) {
                data[line + limit] = '\n';
            }
        }
        if (cut) {
            truncated++;
            truncated_bytes += cut;
            cut = 0;
        }
        line += length + 1;
        total += value;
        end_at[i] = line;
        total_at[i] = total;
    }
    result = Py_BuildValue("nOOnn", line, ends, sizes, truncated, truncated_bytes);
done:
    Py_XDECREF(ends);
    Py_XDECREF(sizes);
    PyBuffer_Release(&view);
    return result;
}

static PyMethodDef methods[] = {
    {"split", (PyCFunction)(void (*)(void))split, METH_FASTCALL,
     "split(buffer, start, keep_newline, limit, first_cut) -> (stop, ends, sizes, truncated, truncated_bytes)"},
    {NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "singer._speedups", "The text reader's line splitting, in C.", -1, methods,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    return PyModule_Create(&module_def);
}
