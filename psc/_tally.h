/*
 * The layout of psc.DeliveryTally (defined in psc/_speedups.c), shared with psc/_rdkafka.c, whose delivery
 * reports count a tally's records without calling Python.
 */
#ifndef PSC_TALLY_H
#define PSC_TALLY_H

#include <Python.h>

/* A delivery callback that counts its reports: `pending` goes down on each, `acked` up on each success, and
 * a failure calls the `failed(err, msg)` method. `kept` (NULL or a list) holds views of the buffers whose
 * bytes librdkafka was given without a copy: each record holds a reference to its tally until its report,
 * so the buffers outlive every record that points into them. */
typedef struct {
    PyObject_HEAD
    Py_ssize_t pending;
    Py_ssize_t acked;
    PyObject *kept;
} DeliveryTally;

#endif
