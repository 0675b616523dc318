# Compiled layout of portico/routes/pool.py: Pool stays a msgspec Struct (compiled like any Python class). Declared
# here only what another compiled module calls as C: cursor_for, for the table's new-route path, and member_at, for
# its renewal of an unchanged re-registration (table.pxd).
cpdef Py_ssize_t cursor_for(str algorithm) noexcept
cpdef member_at(members, str address)
