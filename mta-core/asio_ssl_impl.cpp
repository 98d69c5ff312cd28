// Asio's SSL implementation, compiled once (BOOST_ASIO_SEPARATE_COMPILATION,
// see proto/asio_impl.cpp); only mta-core speaks TLS.
#include <boost/asio/ssl/impl/src.hpp>
