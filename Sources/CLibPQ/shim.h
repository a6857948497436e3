#include <libpq-fe.h>
// The connection poller waits on libpq sockets with epoll (not exported by Swift's Glibc module).
#include <sys/epoll.h>
