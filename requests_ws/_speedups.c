/* requests_ws._speedups: the optional C accelerator.
 *
 * apply_mask(data, mask) -> bytes: data XOR-ed with the repeated 4-byte mask
 * (RFC 6455 section 5.3), eight bytes at a time. The pure-Python fallback in
 * masking.py has the same contract and is tested against the same vectors.
 *
 * fillable(size) -> Fillable: a new bytes object of `size` bytes, written
 * through memoryview(fillable) and handed out by take(), so that a large
 * payload is received in place instead of into a bytearray copied at the end
 * (buffers.py). Its bytes are uninitialized until written; take() refuses a
 * second call and copies while a view is alive, so bytes handed out never
 * change.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

static PyObject *
apply_mask(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    Py_buffer data, mask;
    PyObject *result = NULL;

    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "apply_mask() takes exactly 2 arguments (data, mask)");
        return NULL;
    }
    if (PyObject_GetBuffer(args[0], &data, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    if (PyObject_GetBuffer(args[1], &mask, PyBUF_SIMPLE) < 0) {
        PyBuffer_Release(&data);
        return NULL;
    }
    if (mask.len != 4) {
        PyErr_Format(PyExc_ValueError, "mask must contain 4 bytes, got %zd", mask.len);
        goto done;
    }
    result = PyBytes_FromStringAndSize(NULL, data.len);
    if (result == NULL) {
        goto done;
    }
    {
        const unsigned char *in = (const unsigned char *)data.buf;
        unsigned char *out = (unsigned char *)PyBytes_AS_STRING(result);
        const unsigned char *key = (const unsigned char *)mask.buf;
        Py_ssize_t size = data.len, i = 0;
        uint32_t key32;
        uint64_t key64;
        memcpy(&key32, key, 4);
        key64 = ((uint64_t)key32 << 32) | key32;
        Py_BEGIN_ALLOW_THREADS
        for (; i + 8 <= size; i += 8) {
            uint64_t chunk;
            memcpy(&chunk, in + i, 8);
            chunk ^= key64;
            memcpy(out + i, &chunk, 8);
        }
        for (; i < size; i++) {
            out[i] = in[i] ^ key[i & 3];
        }
        Py_END_ALLOW_THREADS
    }
done:
    PyBuffer_Release(&mask);
    PyBuffer_Release(&data);
    return result;
}

/* Fillable: a bytes object under construction, exported as a writable buffer.
 * A memoryview of it keeps it (and so the bytes) alive; take() hands the bytes
 * out once no view is left, and a copy while one is (a late writer can never
 * change bytes that were handed out). */
typedef struct {
    PyObject_HEAD
    PyObject *data;
    Py_ssize_t exports;
} Fillable;

static int
fillable_getbuffer(Fillable *self, Py_buffer *view, int flags)
{
    if (self->data == NULL) {
        PyErr_SetString(PyExc_BufferError, "the payload was already taken");
        return -1;
    }
    if (PyBuffer_FillInfo(view, (PyObject *)self, PyBytes_AS_STRING(self->data),
                          PyBytes_GET_SIZE(self->data), 0, flags) < 0) {
        return -1;
    }
    self->exports++;
    return 0;
}

static void
fillable_releasebuffer(Fillable *self, Py_buffer *view)
{
    self->exports--;
}

static PyBufferProcs fillable_as_buffer = {
    (getbufferproc)fillable_getbuffer,
    (releasebufferproc)fillable_releasebuffer,
};

static PyObject *
fillable_take(Fillable *self, PyObject *unused)
{
    PyObject *data = self->data;

    if (data == NULL) {
        PyErr_SetString(PyExc_BufferError, "the payload was already taken");
        return NULL;
    }
    if (self->exports > 0) {
        return PyBytes_FromStringAndSize(PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data));
    }
    self->data = NULL;
    return data;
}

static void
fillable_dealloc(Fillable *self)
{
    Py_XDECREF(self->data);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMethodDef fillable_methods[] = {
    {"take", (PyCFunction)fillable_take, METH_NOARGS,
     "take() -> bytes: the payload (a copy while a view of it is still alive)."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject FillableType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "requests_ws._speedups.Fillable",
    .tp_basicsize = sizeof(Fillable),
    .tp_dealloc = (destructor)fillable_dealloc,
    .tp_as_buffer = &fillable_as_buffer,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A bytes object under construction, filled through a memoryview.",
    .tp_methods = fillable_methods,
};

static PyObject *
fillable(PyObject *module, PyObject *arg)
{
    Py_ssize_t size = PyLong_AsSsize_t(arg);
    Fillable *self;

    if (size == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (size < 0) {
        PyErr_SetString(PyExc_ValueError, "size must not be negative");
        return NULL;
    }
    self = PyObject_New(Fillable, &FillableType);
    if (self == NULL) {
        return NULL;
    }
    self->exports = 0;
    self->data = PyBytes_FromStringAndSize(NULL, size);
    if (self->data == NULL) {
        Py_DECREF(self);
        return NULL;
    }
    return (PyObject *)self;
}

static PyMethodDef speedups_methods[] = {
    {"apply_mask", (PyCFunction)(void (*)(void))apply_mask, METH_FASTCALL,
     "apply_mask(data, mask) -> bytes: XOR data with the repeated 4-byte mask."},
    {"fillable", (PyCFunction)fillable, METH_O,
     "fillable(size) -> Fillable: `size` bytes to fill through memoryview(), then take()."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef speedups_module = {
    PyModuleDef_HEAD_INIT, "requests_ws._speedups", "C accelerator for masking and receive buffers.", -1,
    speedups_methods,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    if (PyType_Ready(&FillableType) < 0) {
        return NULL;
    }
    return PyModule_Create(&speedups_module);
}
