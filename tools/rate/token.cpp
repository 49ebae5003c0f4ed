#include "tools/rate/token.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <vector>

#include "framework/core/error.h"

namespace iris::rate {

namespace {

std::string hex(const unsigned char* p, size_t n) {
  static const char* digits = "0123456789abcdef";
  std::string s;
  for (size_t i = 0; i < n; ++i) {
    s += digits[p[i] >> 4];
    s += digits[p[i] & 15];
  }
  return s;
}

std::string random_hex(size_t bytes) {
  std::vector<unsigned char> buf(bytes);
  IRIS_CHECK(RAND_bytes(buf.data(), static_cast<int>(bytes)) == 1, "rate: no random bytes from OpenSSL");
  return hex(buf.data(), bytes);
}

std::string sha256_hex(const std::string& data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  IRIS_CHECK(EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr) == 1,
             "rate: SHA-256 failed (OpenSSL)");
  return hex(md, len);
}

}  // namespace

void check_token(const std::string& token) {
  IRIS_CHECK(token.size() >= 8 && token.size() <= 256,
             "rate: the study token must be 8-256 characters long (it has ", token.size(), ")");
  for (char c : token)
    IRIS_CHECK(c > ' ' && c < 127,
               "rate: the study token may hold only printable ASCII characters without spaces");
}

std::string hash_token(const std::string& token) {
  const std::string salt = random_hex(16);
  return "sha256:" + salt + ":" + sha256_hex(salt + token);
}

bool token_matches(const std::string& token, const std::string& stored) {
  const auto a = stored.find(':'), b = stored.rfind(':');
  if (stored.rfind("sha256:", 0) != 0 || a == b) return false;
  const std::string salt = stored.substr(a + 1, b - a - 1), want = stored.substr(b + 1);
  const std::string got = sha256_hex(salt + token);
  return got.size() == want.size() && CRYPTO_memcmp(got.data(), want.data(), got.size()) == 0;
}

std::string random_token() {
  return random_hex(16);
}

}  // namespace iris::rate
