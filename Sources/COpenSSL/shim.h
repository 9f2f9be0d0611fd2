// COpenSSL: system headers for Swift. <netinet/in.h> and <sys/socket.h> come first, or clean builds fail
// with 'in_addr has different definitions in different modules' (shared/SWIFT-LINUX.md §1).
#pragma once
#include <netinet/in.h>
#include <sys/socket.h>
#include <openssl/ssl.h>
#include <openssl/evp.h>
#include <openssl/core_names.h>
#include <openssl/opensslv.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <openssl/bn.h>
#include <openssl/params.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/err.h>
