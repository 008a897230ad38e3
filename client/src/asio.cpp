// Asio, compiled once for the whole library (BOOST_ASIO_SEPARATE_COMPILATION is part of
// redcoro::client's interface, so users' code links against this too).
#include <boost/asio/impl/src.hpp>
// Asio's TLS layer, compiled once too (links OpenSSL).
#include <boost/asio/ssl/impl/src.hpp>
