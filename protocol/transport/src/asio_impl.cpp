// Asio is compiled once, here (BOOST_ASIO_SEPARATE_COMPILATION is PUBLIC on ferry_transport).
#include <boost/asio/impl/src.hpp>
