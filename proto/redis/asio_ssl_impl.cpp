// Asio's SSL implementation for the Redis client's TLS, compiled once
// (BOOST_ASIO_SEPARATE_COMPILATION, see proto/asio_impl.cpp). A program that
// compiles it too (mta-core) links one copy: both are members of static
// libraries with the same symbols, and the first one resolves them.
#include <boost/asio/ssl/impl/src.hpp>
