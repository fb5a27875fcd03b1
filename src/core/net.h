/* net.h — address helpers shared by the credential endpoints and the HTTP server. Owns nothing; thread-safe. */
#ifndef RD_CORE_NET_H
#define RD_CORE_NET_H

/* 1 when host is a numeric loopback address (127.0.0.0/8, ::1; no brackets), else 0 (names included: the
 * caller decides whether "localhost" counts). */
int rd_ip_is_loopback(const char *host);

#endif
