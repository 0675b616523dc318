# Compiled layout of portico/routes/guids.py: the block packed and read back by C loops over a scratch C array,
# so a registration's two ids become one bytes without a temporary, and the X-CF-* lines and the access log's
# id fields are written as hex straight from the block (no str per request).
cimport cython
from cpython.unicode cimport PyUnicode_1BYTE_KIND, PyUnicode_DATA, PyUnicode_KIND
from libc.string cimport memcpy

cdef unsigned char _BUF[256]
cdef bytes _HEX_PAIRS
cdef bytes _NIBBLE

@cython.locals(p='unsigned char*', a=int, i=int)
cpdef pack(str app_id, str instance_id)
@cython.locals(n=Py_ssize_t, k=Py_ssize_t, j=Py_ssize_t, hi='unsigned char', lo='unsigned char',
               s='const unsigned char*', nibble='const unsigned char*')
cdef int _pack_into(str text, unsigned char* out) except -2
cdef inline int _raw_size(int shape) noexcept
cpdef str app_id_of(guids)
cpdef str instance_id_of(guids)
@cython.locals(block=bytes, n=Py_ssize_t)
cdef str _id_of(guids, bint instance)
cdef Py_ssize_t _id_start(int shape, bint instance) noexcept
cdef Py_ssize_t _id_size(int shape, bint instance) noexcept
cpdef bint has_instance_id(guids) except -1
@cython.locals(p='unsigned char*', s='const unsigned char*', m=Py_ssize_t)
cdef str _text(bytes block, Py_ssize_t start, Py_ssize_t n)
@cython.locals(pairs='const unsigned char*', k=Py_ssize_t, j=Py_ssize_t, c=Py_ssize_t)
cdef Py_ssize_t dashed_hex(const unsigned char* raw, Py_ssize_t n, unsigned char* out) except -1
@cython.locals(block=bytes, s='const unsigned char*', n=Py_ssize_t)
cdef Py_ssize_t put_guid(guids, bint instance, unsigned char* out) except -2
@cython.locals(p='unsigned char*', k=Py_ssize_t, n=Py_ssize_t, m=Py_ssize_t, j=Py_ssize_t, ch=Py_UCS4)
cpdef bytes cf_block(guids, str index, str address)
@cython.locals(s='const unsigned char*', n=Py_ssize_t)
cdef Py_ssize_t _put_literal(unsigned char* p, Py_ssize_t k, bytes literal) except -1
@cython.locals(p='unsigned char*', n=Py_ssize_t)
cpdef id_text(guids, bint instance)
