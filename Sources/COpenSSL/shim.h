// The OpenSSL surface Switchyard uses. Function-like macros are re-exposed here as static inline
// functions, because Swift cannot call C macros; so are the few steps that need OpenSSL's
// parameter arrays (the ticket key callback's MAC setup).
#ifndef SWITCHYARD_COPENSSL_SHIM_H
#define SWITCHYARD_COPENSSL_SHIM_H
#include <openssl/ssl.h>
#include <openssl/err.h>
#include <openssl/hmac.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/crypto.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <openssl/pem.h>
#include <openssl/core_names.h>
#include <openssl/params.h>
#include <string.h>

static inline long sy_SSL_CTX_set_mode(SSL_CTX *ctx, long mode) { return SSL_CTX_set_mode(ctx, mode); }
static inline int sy_SSL_CTX_set_min_proto_version(SSL_CTX *ctx, int v) { return SSL_CTX_set_min_proto_version(ctx, v); }
static inline int sy_SSL_CTX_set_max_proto_version(SSL_CTX *ctx, int v) { return SSL_CTX_set_max_proto_version(ctx, v); }
static inline long sy_SSL_set_tlsext_host_name(SSL *ssl, const char *name) { return SSL_set_tlsext_host_name(ssl, name); }
static inline void sy_OPENSSL_free(void *p) { OPENSSL_free(p); }
static inline const EVP_MD *sy_EVP_sha256(void) { return EVP_sha256(); }

// SHA-256 as a plain struct state (deprecated in OpenSSL 3, still the same block code as the
// EVP provider): no context allocation and no provider dispatch per hash, and copying the struct
// forks a hash, which is how HMAC keeps its padded-key states. Measured at a third of a signed
// request's instructions going to EVP contexts and repeated key pads.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
#include <openssl/sha.h>
static inline int sy_SHA256_Init(SHA256_CTX *c) { return SHA256_Init(c); }
static inline int sy_SHA256_Update(SHA256_CTX *c, const void *data, size_t len) { return SHA256_Update(c, data, len); }
static inline int sy_SHA256_Final(unsigned char *md, SHA256_CTX *c) { return SHA256_Final(md, c); }
#pragma GCC diagnostic pop

// Versions and modes.
static inline int sy_TLS1_VERSION(void) { return TLS1_VERSION; }
static inline int sy_TLS1_1_VERSION(void) { return TLS1_1_VERSION; }
static inline int sy_TLS1_2_VERSION(void) { return TLS1_2_VERSION; }
static inline int sy_TLS1_3_VERSION(void) { return TLS1_3_VERSION; }
static inline long sy_SSL_MODE_RELEASE_BUFFERS(void) { return SSL_MODE_RELEASE_BUFFERS; }
static inline long sy_SSL_MODE_ENABLE_PARTIAL_WRITE(void) { return SSL_MODE_ENABLE_PARTIAL_WRITE; }
static inline long sy_SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER(void) { return SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER; }

// Options (SSL_OP_* are SSL_OP_BIT(n) casts in OpenSSL 3).
static inline uint64_t sy_SSL_OP_NO_RENEGOTIATION(void) { return SSL_OP_NO_RENEGOTIATION; }
static inline uint64_t sy_SSL_OP_NO_COMPRESSION(void) { return SSL_OP_NO_COMPRESSION; }
static inline uint64_t sy_SSL_OP_IGNORE_UNEXPECTED_EOF(void) { return SSL_OP_IGNORE_UNEXPECTED_EOF; }
static inline uint64_t sy_SSL_OP_ENABLE_KTLS(void) { return SSL_OP_ENABLE_KTLS; }
static inline uint64_t sy_SSL_OP_NO_TICKET(void) { return SSL_OP_NO_TICKET; }
static inline uint64_t sy_SSL_OP_CIPHER_SERVER_PREFERENCE(void) { return SSL_OP_CIPHER_SERVER_PREFERENCE; }
static inline uint64_t sy_SSL_CTX_set_options(SSL_CTX *ctx, uint64_t op) { return SSL_CTX_set_options(ctx, op); }

// Session caches.
static inline long sy_SSL_CTX_set_session_cache_mode(SSL_CTX *ctx, long m) { return SSL_CTX_set_session_cache_mode(ctx, m); }
static inline long sy_SSL_CTX_sess_set_cache_size(SSL_CTX *ctx, long n) { return SSL_CTX_sess_set_cache_size(ctx, n); }
static inline long sy_SSL_SESS_CACHE_SERVER(void) { return SSL_SESS_CACHE_SERVER; }
static inline long sy_SSL_SESS_CACHE_CLIENT(void) { return SSL_SESS_CACHE_CLIENT; }
static inline long sy_SSL_SESS_CACHE_NO_INTERNAL_STORE(void) { return SSL_SESS_CACHE_NO_INTERNAL_STORE; }

// SNI.
typedef int (*sy_servername_cb)(SSL *, int *, void *);
static inline long sy_SSL_CTX_set_tlsext_servername_callback(SSL_CTX *ctx, sy_servername_cb cb) {
    return SSL_CTX_set_tlsext_servername_callback(ctx, cb);
}
static inline long sy_SSL_CTX_set_tlsext_servername_arg(SSL_CTX *ctx, void *arg) {
    return SSL_CTX_set_tlsext_servername_arg(ctx, arg);
}
static inline int sy_SSL_TLSEXT_ERR_OK(void) { return SSL_TLSEXT_ERR_OK; }
static inline int sy_SSL_TLSEXT_ERR_NOACK(void) { return SSL_TLSEXT_ERR_NOACK; }
static inline int sy_SSL_TLSEXT_ERR_ALERT_FATAL(void) { return SSL_TLSEXT_ERR_ALERT_FATAL; }
static inline int sy_TLSEXT_NAMETYPE_host_name(void) { return TLSEXT_NAMETYPE_host_name; }

// Session tickets: keys Switchyard rotates itself. The MAC is HMAC-SHA256 through EVP_MAC.
typedef int (*sy_ticket_cb)(SSL *, unsigned char *, unsigned char *, EVP_CIPHER_CTX *, EVP_MAC_CTX *, int);
static inline int sy_SSL_CTX_set_tlsext_ticket_key_evp_cb(SSL_CTX *ctx, sy_ticket_cb cb) {
    return SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, cb);
}
static inline int sy_ticket_mac_init(EVP_MAC_CTX *hctx, const unsigned char *key, size_t keylen) {
    OSSL_PARAM params[2];
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0);
    params[1] = OSSL_PARAM_construct_end();
    return EVP_MAC_init(hctx, key, keylen, params);
}

// Upstream verification.
static inline int sy_SSL_VERIFY_PEER(void) { return SSL_VERIFY_PEER; }
static inline int sy_SSL_VERIFY_NONE(void) { return SSL_VERIFY_NONE; }
static inline int sy_X509_V_OK(void) { return X509_V_OK; }

// ex_data slot 0 of an SSL: the Swift object that owns it.
static inline int sy_SSL_set_app_data(SSL *ssl, void *p) { return SSL_set_app_data(ssl, p); }
static inline void *sy_SSL_get_app_data(const SSL *ssl) { return SSL_get_app_data(ssl); }

// Errors.
static inline int sy_SSL_ERROR_WANT_READ(void) { return SSL_ERROR_WANT_READ; }
static inline int sy_SSL_ERROR_WANT_WRITE(void) { return SSL_ERROR_WANT_WRITE; }
static inline int sy_SSL_ERROR_ZERO_RETURN(void) { return SSL_ERROR_ZERO_RETURN; }
static inline int sy_SSL_ERROR_SYSCALL(void) { return SSL_ERROR_SYSCALL; }
static inline int sy_SSL_ERROR_SSL(void) { return SSL_ERROR_SSL; }

// kTLS: whether the record layer was handed to the kernel.
static inline long sy_BIO_get_ktls_send(BIO *b) { return BIO_get_ktls_send(b); }
static inline long sy_BIO_get_ktls_recv(BIO *b) { return BIO_get_ktls_recv(b); }

static inline long sy_SSL_CTX_set_read_ahead(SSL_CTX *ctx, int yes) { return SSL_CTX_set_read_ahead(ctx, yes); }
static inline long sy_SSL_CTX_set1_groups_list(SSL_CTX *ctx, const char *list) { return SSL_CTX_set1_groups_list(ctx, list); }
static inline int sy_SSL_CTX_set_num_tickets(SSL_CTX *ctx, size_t n) { return SSL_CTX_set_num_tickets(ctx, n); }

// Certificates.
static inline int sy_GEN_DNS(void) { return GEN_DNS; }
static inline long sy_SSL_CTX_add0_chain_cert(SSL_CTX *ctx, X509 *x) { return SSL_CTX_add0_chain_cert(ctx, x); }
#endif
