# Compiled layout of portico/proxy/headers.py.
cpdef bytes request_id()
cpdef list connection_tokens(value)
