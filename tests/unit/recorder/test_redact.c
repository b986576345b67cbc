/* redact: key shapes (every provider, and near misses: too short, too long, wrong prefix, inside
 * a longer word), secret names, fingerprints against SHA-256 values computed outside ptb, UTF-8
 * cleaning, environment blocks (layout, bounds, secrets) and free-text redaction. Every case that
 * holds a secret also checks that the secret appears nowhere in what comes out: in the text, or
 * in the packed protobuf bytes of the environment. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memmem; the build defines it, a direct compile may not */
#endif
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "redact.h"

/* Secrets and their SHA-256, computed with `printf %s VALUE | sha256sum`. */
#define ANT "sk-ant-api03-Zx9Qw8Er7Ty6Ui5Op4As3Df2Gh1Jk0LzXcVbNm-_Qa"
#define ANT_SHA "8e8d7512c9ed334bd444e882f2eae2ae50de7635fa1e184273613ddb9cc1197d"
#define GHP "ghp_A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"
#define GHP_SHA "620e24b631970fdc64de36b73f4ce2206a2e3fe2d040e02f2d0d7d88fdc198b8"
#define GHX "ghp_xxx"
#define GHX_SHA "c17fd25f46c0608b7a713589d43d8323681a774caa2a0feb21dbe49554a54b9d"
#define OAI "sk-proj-Tq3Wv5Xz7Bn9Mk2Lp4Rs6Ud8Fh0Gj1Ka3Ce5"
#define OAI_SHA "25e0edbdbfa807a637141304297891f5fa17b6aabb2c2a6b966a27721eb2f190"
#define AWS "AKIAIOSFODNN7EXAMPLE"
#define AWS_SHA "1a5d44a2dca19669d72edf4c4f1c27c4c1ca4b4408fbb17f6ce4ad452d78ddb3"
#define HF "hf_AbCdEfGhIjKlMnOpQrStUvWxYzAbCdEfGh"
#define HF_SHA "b5789fbaa173ce6f500dfee1cbbd151af551168a0634d481cb0be09c0125de03"
#define PW "hunter2pass"
#define PW_SHA "3c78868b4a272dabc628cf88b0db95b9910aad273a8dc78d3b4b6ef1772b7957"
#define APIK "abc123xyz"
#define APIK_SHA "604365fa1146d17e81aa41ef72ef03b07a5d3c2e44cfa6f9b817606779eccae6"
#define BASIC "dXNlcjpwYXNz"
#define BASIC_SHA "0e9d220616f08345a714ee57d8516310770588484b5239844635f952965e34a6"
#define JWT "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.c2lnbmF0dXJl"
#define JWT_SHA "3029b75d3c28ab76bdb49980f0b6c5cc8c53bc6c58104edf5a581e20cfd4a58c"
#define WANDB "w4ndb0123456789abcdef"
#define URLPW "p@ss:w0rd"
#define URLPW_SHA "d61bc2839791239d591f5617d692e40e178906d73d8576020e2bb40e7665b469"
#define EMPTY_SHA "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define BEARER_ANT_SHA "f21fd65504e6a44895d82cf5bf67de12240b7c80083d5470a4efa784a2457498"
#define AIZA_SHA "d9328b2b59ef6fdd6c829d5065d70a57343bce99bcda580f62ffad7e7aa27e4d"
#define ABC_SHA "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"

/* All secrets above; none may come out of redaction in clear. */
static const char *const secrets[] = {ANT, GHP, GHX, OAI, AWS, HF, PW, APIK, BASIC, JWT, WANDB};

static void assert_no_secret(const void *buf, size_t n)
{
    for (size_t k = 0; k < sizeof secrets / sizeof secrets[0]; k++)
        if (memmem(buf, n, secrets[k], strlen(secrets[k]))) {
            fail_msg("secret %s in output: %.*s", secrets[k], (int)n, (const char *)buf);
        }
}

static void hex(const uint8_t *b, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", b[i]);
}

/* prefix + n bytes cycled from fill + suffix, in a static buffer. */
static const char *mk(const char *prefix, const char *fill, size_t n, const char *suffix)
{
    static char buf[512];
    size_t p = strlen(prefix), f = strlen(fill);
    memcpy(buf, prefix, p);
    for (size_t i = 0; i < n; i++)
        buf[p + i] = fill[i % f];
    strcpy(buf + p + n, suffix);
    return buf;
}

#define AN "A1b2C3d4E5f6G7h8I9j0"
#define B "Ab1-Cd2_Ef3"
#define UN "Q7W8E9R0T1Y2"

/* ------------------------------------------------------------------ rule 1 */

static void test_provider(void **state)
{
    (void)state;
    static const struct {
        const char *prefix, *fill;
        size_t n;
        const char *suffix, *want;
    } t[] = {
        {"sk-", AN, 48, "", "openai"},
        {"sk-proj-", B, 100, "", "openai"},
        {"sk-svcacct-", B, 40, "", "openai"},
        {"sk-", B, 20, "", "openai"},
        {"sk-ant-api03-", B, 80, "AA", "anthropic"},
        {"sk-ant-", B, 20, "", "anthropic"},
        {"sk-or-v1-", "0123456789abcdef", 64, "", "openrouter"},
        {"hf_", "AbCdEfGhIj", 34, "", "hf"},
        {"hf_", AN, 30, "", "hf"},
        {"ghp_", AN, 36, "", "github"},
        {"gho_", AN, 36, "", "github"},
        {"ghu_", AN, 36, "", "github"},
        {"ghs_", AN, 36, "", "github"},
        {"ghr_", AN, 40, "", "github"},
        {"github_pat_", AN, 22, "_", "github"},
        {"github_pat_11ABCDEFG0", AN, 22, "_aBcDeF", "github"},
        {"AKIA", UN, 16, "", "aws"},
        {"ASIA", UN, 16, "", "aws"},
        {"AIza", B, 35, "", "google"},
        {"ya29.", B, 60, "", "google"},
        {"xoxb-", "1234567890-", 30, "", "slack"},
        {"xoxp-", "12ab-", 10, "", "slack"},
        {"xoxa-", AN, 10, "", "slack"},
        {"xoxr-", AN, 10, "", "slack"},
        {"xoxs-", AN, 10, "", "slack"},
        {"gsk_", AN, 52, "", "groq"},
        {"r8_", AN, 37, "", "replicate"},
        {"glpat-", B, 20, "", "gitlab"},
        {"npm_", AN, 36, "", "npm"},
        {"sk_live_", AN, 24, "", "stripe"},
        {"rk_live_", AN, 99, "", "stripe"},
        {"xai-", AN, 80, "", "xai"},
        {"pplx-", AN, 48, "", "perplexity"},
        {JWT, "", 0, "", "jwt"},
        {"eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0.", "", 0, "", "jwt"}, /* alg none: no signature */
        /* near misses */
        {"", "", 0, "", NULL},
        {"sk-", "", 0, "", NULL},
        {"sk-", B, 19, "", NULL},                          /* too short */
        {"sk-ant-", B, 19, "", NULL},                      /* too short, and not openai either */
        {"sk-or-", B, 19, "", NULL},                       /* same for openrouter */
        {"xsk-", AN, 48, "", NULL},                        /* wrong prefix */
        {"SK-", AN, 48, "", NULL},                         /* prefixes are case-sensitive */
        {"sk_", AN, 48, "", NULL},                         /* wrong prefix */
        {"sk-", AN, 48, "!", NULL},                        /* not the whole token */
        {"sk-", AN, 48, " ", NULL},                        /* not the whole token */
        {"hf_", AN, 29, "", NULL},                         /* too short */
        {"hf_", "Ab-", 33, "", NULL},                      /* '-' is not in the hf set */
        {"ghp_", AN, 35, "", NULL},                        /* too short */
        {"ghx_", AN, 36, "", NULL},                        /* no such prefix */
        {"github_pat_", AN, 21, "", NULL},                 /* too short */
        {"AKIA", UN, 15, "", NULL},                        /* too short */
        {"AKIA", UN, 17, "", NULL},                        /* too long: inside a longer word */
        {"AKIA", "abcdefgh", 16, "", NULL},                /* lower case */
        {"AKIB", UN, 16, "", NULL},                        /* wrong prefix */
        {"AIza", B, 34, "", NULL},                         /* too short */
        {"AIza", B, 36, "", NULL},                         /* too long */
        {"xoxz-", AN, 20, "", NULL},                       /* no such Slack type */
        {"xoxb-", AN, 9, "", NULL},                        /* too short */
        {"gsk_", AN, 19, "", NULL},                        /* too short */
        {"r8_", AN, 19, "", NULL},                         /* too short */
        {"eyJhbGciOiJIUzI1NiJ9", "", 0, "", NULL},         /* no dots */
        {"eyJabc.eyJabc.sig", "", 0, "", NULL},            /* parts too short */
        {"eyJhbGciOiJIUzI1NiJ9.e30.sig", "", 0, "", NULL}, /* payload is not eyJ */
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        const char *v = mk(t[i].prefix, t[i].fill, t[i].n, t[i].suffix);
        const char *got = redact_provider(v, strlen(v));
        if ((got == NULL) != (t[i].want == NULL) || (got && strcmp(got, t[i].want) != 0))
            fail_msg("case %zu %s: got %s, want %s", i, v, got ? got : "NULL",
                     t[i].want ? t[i].want : "NULL");
    }
    assert_null(redact_provider(NULL, 0));
    /* len, not the NUL, bounds the token */
    assert_string_equal(redact_provider(AWS "ZZZ", 20), "aws");
}

/* ------------------------------------------------------------------ rule 2 */

static void test_names(void **state)
{
    (void)state;
    static const char *const secret[] = {
        "OPENAI_API_KEY",
        "ANTHROPIC_API_KEY",
        "HF_TOKEN",
        "HUGGING_FACE_HUB_TOKEN",
        "GITHUB_TOKEN",
        "GH_TOKEN",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "WANDB_API_KEY",
        "GOOGLE_API_KEY",
        "GEMINI_API_KEY",
        "OPENROUTER_API_KEY",
        "REPLICATE_API_TOKEN",
        "ANTHROPIC_AUTH_TOKEN",
        "CLAUDE_CODE_OAUTH_TOKEN",
        "openai_api_key",
        "PGPASSWORD",
        "MYSQL_PWD",
        "SSHPASS",
        "DB_PASSWD",
        "SMTP_PASS",
        "COOKIE",
        "MY_SECRET",
        "CLIENT_SECRET",
        "SESSION_ID",
        "PRIVATE_KEY",
        "KEY",
        "NPM_CONFIG__AUTH",
        "apiKey",
        "accessToken",
        "--api-key",
        "--token",
        "x-api-key",
        "Authorization",
        "Proxy-Authorization",
        "GPG_PASSPHRASE",
        "MY_CREDENTIALS",
        "A_B_C_D_E_F_G_H_I_J_K_L_M_N_O_P_Q_R_S_T_U_V_W_X_Y_Z_A_B_C_D_E_F_G_TOKEN"};
    static const char *const plain[] = {"PATH",
                                        "HOME",
                                        "SSH_AUTH_SOCK",
                                        "KEYBOARD",
                                        "MONKEY",
                                        "KEYTIMEOUT",
                                        "TOKENIZERS_PARALLELISM",
                                        "XDG_SESSION_TYPE",
                                        "DBUS_SESSION_BUS_ADDRESS",
                                        "SESSION_MANAGER",
                                        "GOOGLE_APPLICATION_CREDENTIALS",
                                        "AWS_SHARED_CREDENTIALS_FILE",
                                        "HF_TOKEN_PATH",
                                        "PWD",
                                        "OLDPWD",
                                        "MAX_TOKENS",
                                        "PAD_TOKEN_ID",
                                        "--max-token-length",
                                        "--eos-token",
                                        "SSH_ASKPASS",
                                        "LANG",
                                        "CUDA_VISIBLE_DEVICES",
                                        "",
                                        "_",
                                        "--",
                                        "--jobserver-auth",
                                        "LS_COLORS",
                                        "KEYS",
                                        "PASSAGE"};
    for (size_t i = 0; i < sizeof secret / sizeof secret[0]; i++)
        if (!redact_name_is_secret(secret[i]))
            fail_msg("%s should be secret", secret[i]);
    for (size_t i = 0; i < sizeof plain / sizeof plain[0]; i++)
        if (redact_name_is_secret(plain[i]))
            fail_msg("%s should not be secret", plain[i]);
    assert_false(redact_name_is_secret(NULL));
}

/* ------------------------------------------------------------------ fingerprints */

static void test_fingerprint(void **state)
{
    (void)state;
    static const struct {
        const char *provider, *value;
        size_t len;
        const char *sha, *prefix;
    } t[] = {
        {"anthropic", ANT, sizeof ANT - 1, ANT_SHA, "sk-a"},
        {"aws", AWS, sizeof AWS - 1, AWS_SHA, "AKIA"},
        {"generic", PW, sizeof PW - 1, PW_SHA, "hu"}, /* 11 bytes: 2 shown */
        {NULL, "abc", 3, ABC_SHA, ""},                /* short: none shown */
        {"generic", "", 0, EMPTY_SHA, ""},
        {"x", "\x01 :\xff<>abcdefghij", 16, NULL, "????"}, /* non-graphic and delimiters */
        {"a-very-long-provider-tag", "abcd", 4, NULL, "a"},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        redact_fp fp;
        assert_int_equal(redact_fingerprint(t[i].provider, t[i].value, t[i].len, &fp), 0);
        char h[65];
        hex(fp.sha256, 32, h);
        if (t[i].sha)
            assert_string_equal(h, t[i].sha);
        assert_string_equal(fp.prefix, t[i].prefix);
        assert_int_equal(fp.length, t[i].len);
        assert_true(strlen(fp.provider) < sizeof fp.provider);
        assert_int_equal(strncmp(fp.provider, t[i].provider ? t[i].provider : "generic", 15), 0);
        /* the message points into fp and survives a pack / unpack */
        assert_ptr_equal(fp.pb.sha256.data, fp.sha256);
        uint8_t buf[256];
        size_t n = ptb__v1__fingerprint__pack(&fp.pb, buf);
        assert_no_secret(buf, n);
        Ptb__V1__Fingerprint *back = ptb__v1__fingerprint__unpack(NULL, n, buf);
        assert_non_null(back);
        assert_string_equal(back->provider, fp.provider);
        assert_string_equal(back->prefix, fp.prefix);
        assert_int_equal(back->sha256.len, 32);
        assert_memory_equal(back->sha256.data, fp.sha256, 32);
        assert_int_equal(back->length, t[i].len);
        ptb__v1__fingerprint__free_unpacked(back, NULL);
    }
}

/* ------------------------------------------------------------------ UTF-8 */

#define FFFD "\xef\xbf\xbd"

/* in and want are literals: their lengths come from sizeof, NULs included. */
#define U(in, want)                                                                                \
    {                                                                                              \
        in, sizeof in - 1, want, sizeof want - 1                                                   \
    }

static void test_utf8_clean(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        size_t len;
        const char *want;
        size_t wlen;
    } t[] = {
        U("", ""),
        U("plain ASCII", "plain ASCII"),
        U("a\0b", "a\0b"),
        U("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"),
        U("\xef\xbf\xbf\xf4\x8f\xbf\xbf", "\xef\xbf\xbf\xf4\x8f\xbf\xbf"), /* the edges */
        U("a\x80z", "a" FFFD "z"),                                         /* continuation */
        U("\xff\xfe", FFFD FFFD),
        U("\xc0\xaf", FFFD FFFD),                   /* overlong '/' */
        U("\xe0\x80\xaf", FFFD FFFD FFFD),          /* overlong, 3 bytes */
        U("\xed\xa0\x80", FFFD FFFD FFFD),          /* surrogate */
        U("\xf4\x90\x80\x80", FFFD FFFD FFFD FFFD), /* over U+10FFFF */
        U("\xf5\x80", FFFD FFFD),
        U("\xe2\x82", FFFD), /* truncated at the end: one U+FFFD */
        U("\xe2\x82"
          "A",
          FFFD "A"), /* truncated by an ASCII byte */
        U("\xf0\x9f\x98"
          "\xc3\xa9",
          FFFD "\xc3\xa9"),
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        char out[64];
        size_t n = redact_utf8_clean(t[i].in, t[i].len, out);
        assert_int_equal(redact_utf8_clean(t[i].in, t[i].len, NULL), n);
        assert_int_equal(n, t[i].wlen);
        assert_memory_equal(out, t[i].want, n);
    }
}

/* ------------------------------------------------------------------ environment blocks */

static redact_env *env(const char *block, size_t len)
{
    redact_env *e = NULL;
    assert_int_equal(redact_env_block(block, len, &e), 0);
    assert_non_null(e);
    /* whatever comes out, packed as the tracer will store it, holds no secret */
    Ptb__V1__ProcEnv pe = PTB__V1__PROC_ENV__INIT;
    pe.env = e->env;
    pe.n_env = e->n_env;
    size_t n = ptb__v1__proc_env__get_packed_size(&pe);
    uint8_t *buf = malloc(n + 1);
    assert_int_equal(ptb__v1__proc_env__pack(&pe, buf), n);
    assert_no_secret(buf, n);
    free(buf);
    return e;
}

static void assert_var(const redact_env *e, size_t i, const char *name, const char *value)
{
    assert_true(i < e->n_env);
    assert_string_equal(e->env[i]->name, name);
    assert_string_equal(e->env[i]->value, value);
    assert_null(e->env[i]->redacted);
}

#define BLOCK(s) s, sizeof s - 1

static void test_env_layout(void **state)
{
    (void)state;
    redact_env *e = env(NULL, 0);
    assert_int_equal(e->n_env, 0);
    assert_null(e->env);
    redact_env_free(e);
    redact_env_free(NULL);

    e = env(BLOCK("A=1\0B=two")); /* no NUL at the end */
    assert_int_equal(e->n_env, 2);
    assert_var(e, 0, "A", "1");
    assert_var(e, 1, "B", "two");
    redact_env_free(e);

    e = env(BLOCK("NOEQ\0X=\0\0=weird\0Y=a=b\0A=1\0A=2\0\0")); /* empty entries are skipped */
    assert_int_equal(e->n_env, 6);
    assert_var(e, 0, "NOEQ", "");
    assert_var(e, 1, "X", "");
    assert_var(e, 2, "", "weird");
    assert_var(e, 3, "Y", "a=b");
    assert_var(e, 4, "A", "1"); /* duplicates are kept, in order */
    assert_var(e, 5, "A", "2");
    assert_int_equal(e->n_redacted, 0);
    assert_int_equal(e->truncated, 0);
    redact_env_free(e);

    e = env(BLOCK("N\xff"
                  "AME=va\xc3lue\0OK=\xc3\xa9t\xc3\xa9"));
    assert_var(e, 0, "N" FFFD "AME", "va" FFFD "lue");
    assert_var(e, 1, "OK", "\xc3\xa9t\xc3\xa9");
    redact_env_free(e);

    assert_int_equal(redact_env_block(NULL, 3, &e), PTB_EINVAL);
    assert_int_equal(redact_env_block("A=1", 3, NULL), PTB_EINVAL);
}

static void test_env_secrets(void **state)
{
    (void)state;
    static const struct {
        const char *entry, *name, *provider, *value; /* value: NULL when redacted */
    } t[] = {
        {"OPENAI_API_KEY=" OAI, "OPENAI_API_KEY", "openai", NULL},
        {"ANTHROPIC_API_KEY=" ANT, "ANTHROPIC_API_KEY", "anthropic", NULL},
        {"HF_TOKEN=" HF, "HF_TOKEN", "hf", NULL},
        {"GH_TOKEN=" GHP, "GH_TOKEN", "github", NULL},
        {"WANDB_API_KEY=" WANDB, "WANDB_API_KEY", "generic", NULL}, /* by name only */
        {"DB_PASSWORD=abc", "DB_PASSWORD", "generic", NULL},        /* short: still */
        {"EMPTY_TOKEN=", "EMPTY_TOKEN", "generic", NULL},
        {"SOME_ID=" AWS, "SOME_ID", "aws", NULL}, /* by shape only */
        {"JWT_LIKE=" JWT, "JWT_LIKE", "jwt", NULL},
        {"HDR=Bearer " ANT, "HDR", "anthropic", NULL}, /* contains a key */
        {"PIP_INDEX_URL=https://user:" URLPW "@pypi.example/simple", "PIP_INDEX_URL", "url", NULL},
        {"OPTS=--lr 1 --api-key=" APIK, "OPTS", "generic", NULL},
        {"NOTE=see " GHP " there", "NOTE", "github", NULL},
        {"PATH=/usr/bin:/bin:/work/auth:/etc/private", "PATH", NULL,
         "/usr/bin:/bin:/work/auth:/etc/private"},
        {"SSH_AUTH_SOCK=/tmp/ssh-x/agent.1", "SSH_AUTH_SOCK", NULL, "/tmp/ssh-x/agent.1"},
        {"MAKEFLAGS= -j4 --jobserver-auth=3,4", "MAKEFLAGS", NULL, " -j4 --jobserver-auth=3,4"},
        {"TOKENIZERS_PARALLELISM=false", "TOKENIZERS_PARALLELISM", NULL, "false"},
        {"TASK=sk-learn-it", "TASK", NULL, "sk-learn-it"},
        {ANT, "<secret:anthropic:sk-a:" ANT_SHA ">", NULL, ""}, /* a key without '=' */
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        redact_env *e = env(t[i].entry, strlen(t[i].entry));
        assert_int_equal(e->n_env, 1);
        Ptb__V1__EnvVar *v = e->env[0];
        assert_string_equal(v->name, t[i].name);
        if (t[i].value) {
            assert_var(e, 0, t[i].name, t[i].value);
            assert_int_equal(e->n_redacted, 0);
        } else {
            assert_string_equal(v->value, "");
            assert_non_null(v->redacted);
            assert_int_equal(e->n_redacted, 1);
            if (strcmp(v->redacted->provider, t[i].provider) != 0)
                fail_msg("case %zu: provider %s, want %s", i, v->redacted->provider, t[i].provider);
            const char *val = strchr(t[i].entry, '=') + 1;
            redact_fp fp;
            assert_int_equal(redact_fingerprint(NULL, val, strlen(val), &fp), 0);
            assert_memory_equal(v->redacted->sha256.data, fp.sha256, 32);
            assert_int_equal(v->redacted->length, strlen(val));
        }
        redact_env_free(e);
    }
    /* the whole value is hashed, with the hash an outside tool gives */
    redact_env *e = env(BLOCK("X=1\0HDR=Bearer " ANT "\0Y=2"));
    char h[65];
    hex(e->env[1]->redacted->sha256.data, 32, h);
    assert_string_equal(h, BEARER_ANT_SHA);
    assert_var(e, 2, "Y", "2");
    redact_env_free(e);
}

static void test_env_bounds(void **state)
{
    (void)state;
    /* 5000 variables: 4096 kept, 904 counted */
    size_t cap = 5000 * 16, len = 0;
    char *b = malloc(cap);
    for (int i = 0; i < 5000; i++)
        len += (size_t)sprintf(b + len, "V%d=%d", i, i) + 1;
    redact_env *e = env(b, len);
    assert_int_equal(e->n_env, REDACT_ENV_MAX_VARS);
    assert_int_equal(e->truncated, 5000 - REDACT_ENV_MAX_VARS);
    assert_var(e, 4095, "V4095", "4095");
    assert_true(e->truncated_bytes > 0 && e->truncated_bytes < len);
    assert_memory_equal(b + len - e->truncated_bytes, "V4096=4096", 11);
    redact_env_free(e);
    free(b);

    /* three values of 400 KiB: the third ends past 1 MiB */
    size_t big = 400 << 10;
    len = 3 * (big + 3);
    b = malloc(len);
    for (int i = 0; i < 3; i++) {
        char *p = b + (size_t)i * (big + 3);
        p[0] = (char)('A' + i);
        p[1] = '=';
        memset(p + 2, 'x', big);
        p[big + 2] = '\0';
    }
    e = env(b, len);
    assert_int_equal(e->n_env, 2);
    assert_int_equal(e->truncated, 1);
    assert_int_equal(e->truncated_bytes, big + 3);
    assert_int_equal(strlen(e->env[1]->value), big);
    redact_env_free(e);
    free(b);
}

/* ------------------------------------------------------------------ redact_text */

#define PH(provider, prefix, sha) "<secret:" provider ":" prefix ":" sha ">"

static const struct {
    const char *in, *want;
    unsigned n;
} texts[] = {
    {"curl -H 'Authorization: Bearer " ANT "' https://api.anthropic.com",
     "curl -H 'Authorization: Bearer " PH("anthropic", "sk-a",
                                          ANT_SHA) "' https://api.anthropic.com",
     1},
    {"git clone https://user:" GHX "@github.com/x/y",
     "git clone https://user:" PH("url", "g", GHX_SHA) "@github.com/x/y", 1},
    {"git clone https://x-access-token:" GHP "@github.com/x/y",
     "git clone https://x-access-token:" PH("github", "ghp_", GHP_SHA) "@github.com/x/y", 1},
    {"https://" GHP "@github.com/x", "https://" PH("github", "ghp_", GHP_SHA) "@github.com/x", 1},
    {"postgres://u:" URLPW "@db:5432/x", "postgres://u:" PH("url", "p@", URLPW_SHA) "@db:5432/x",
     1},
    {"--api-key=" APIK, "--api-key=" PH("generic", "ab", APIK_SHA), 1},
    {"--token=" OAI, "--token=" PH("openai", "sk-p", OAI_SHA), 1},
    {"--password='" PW "'", "--password='" PH("generic", "hu", PW_SHA) "'", 1},
    {"x-api-key: " APIK, "x-api-key: " PH("generic", "ab", APIK_SHA), 1},
    {"Authorization: Basic " BASIC, "Authorization: Basic " PH("basic", "dXN", BASIC_SHA), 1},
    {"Authorization: Bearer " APIK, "Authorization: Bearer " PH("bearer", "ab", APIK_SHA), 1},
    {"export HF_TOKEN=" HF "; python x.py",
     "export HF_TOKEN=" PH("hf", "hf_A", HF_SHA) "; python x.py", 1},
    {"{\"api_key\": \"" APIK "\", \"n\": 1}",
     "{\"api_key\": \"" PH("generic", "ab", APIK_SHA) "\", \"n\": 1}", 1},
    {"https://h/api?token=" APIK "&x=1",
     "https://h/api?token=" PH("generic", "ab", APIK_SHA) "&x=1", 1},
    {"echo " AWS " " JWT, "echo " PH("aws", "AKIA", AWS_SHA) " " PH("jwt", "eyJh", JWT_SHA), 2},
    {"key=" AWS, "key=" PH("aws", "AKIA", AWS_SHA), 1},
    {ANT, PH("anthropic", "sk-a", ANT_SHA), 1},
    {"x" ANT, "x" PH("anthropic", "sk-a", ANT_SHA), 1}, /* glued to a word: still a key */
    {AWS "x", PH("aws", "AKIA", AWS_SHA) "x", 1},       /* a fixed-length id glued to more */
    {AWS OAI, PH("aws", "AKIA", AWS_SHA) PH("openai", "sk-p", OAI_SHA), 2}, /* two keys */
    {"ghp_"
     "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8_TOKEN=" APIK,
     PH("github", "ghp_", GHP_SHA) "_TOKEN=" PH("generic", "ab", APIK_SHA), 2}, /* key in a name */
    {"AIzaAIzaAIzaAIzaAIzaAIzaAIzaAIzaAIzaAIz-x", PH("google", "AIza", AIZA_SHA) "-x", 1},
    /* unchanged */
    {"python train.py --lr 3e-4", NULL, 0},
    {"python train.py --max_new_tokens=512 --pad_token_id=0 --tokenizer=gpt2", NULL, 0},
    {"PATH=/usr/bin:/bin", NULL, 0},
    {"ls /tmp/auth:/x https://example.com:8080/a?b=c#d", NULL, 0},
    {"curl -H \"Authorization: Bearer $OPENAI_API_KEY\" https://api.openai.com", NULL, 0},
    {"--token=${HF_TOKEN}", NULL, 0},
    {"make --jobserver-auth=3,4", NULL, 0},
    {"mask-rcnn-resnet50-fpn-coco-2017", NULL, 0}, /* "sk-" inside a word */
    {"task-sk-abc", NULL, 0},                      /* too short */
    {"sk-ant-short", NULL, 0},                     /* too short */
    {"", NULL, 0},
    {"caf\xc3\xa9 \xff bytes", NULL, 0},
    {"already " PH("generic", "ab", APIK_SHA) " done", NULL, 0},
    {"--token=\"" PH("generic", "ab", APIK_SHA) "\"", NULL, 0},
};

static void test_text(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        const char *in = texts[i].in, *want = texts[i].want ? texts[i].want : in;
        char *out, *again;
        size_t n, n2;
        unsigned nr, nr2;
        assert_int_equal(redact_text(in, strlen(in), &out, &n, &nr), 0);
        if (n != strlen(want) || memcmp(out, want, n) != 0)
            fail_msg("case %zu:\n got  %s\n want %s", i, out, want);
        assert_int_equal(out[n], '\0');
        assert_int_equal(nr, texts[i].n);
        assert_no_secret(out, n);
        /* redacting twice changes nothing */
        assert_int_equal(redact_text(out, n, &again, &n2, &nr2), 0);
        assert_int_equal(n2, n);
        assert_memory_equal(again, out, n);
        assert_int_equal(nr2, 0);
        free(again);
        free(out);
    }
}

static void test_text_edges(void **state)
{
    (void)state;
    char *out;
    size_t n;
    assert_int_equal(redact_text(NULL, 0, &out, &n, NULL), 0);
    assert_string_equal(out, "");
    assert_int_equal(n, 0);
    free(out);
    /* length bounds the text, not a NUL: the key cut short is no key */
    assert_int_equal(redact_text("a " ANT, 20, &out, NULL, NULL), 0);
    assert_memory_equal(out, "a " ANT, 20);
    free(out);
    /* argv joined with NULs: each string is its own word */
    static const char argv[] = "curl\0-H\0x-api-key: " APIK "\0" AWS;
    unsigned nr;
    assert_int_equal(redact_text(argv, sizeof argv - 1, &out, &n, &nr), 0);
    assert_int_equal(nr, 2);
    assert_no_secret(out, n);
    free(out);
    assert_int_equal(redact_text("x", 1, NULL, NULL, NULL), PTB_EINVAL);
    assert_int_equal(redact_text(NULL, 1, &out, NULL, NULL), PTB_EINVAL);
    assert_null(out);
    /* checked before the text is read */
    assert_int_equal(redact_text("x", (size_t)REDACT_TEXT_MAX + 1, &out, NULL, NULL), PTB_ETOOBIG);
    /* many secrets in a row; pathological repeats stay fast (linear scan) */
    size_t len = 1 << 20;
    char *big = malloc(len);
    /* each byte is looked at a bounded number of times: repeated prefixes cost no rescans.
     * "AKIA..." is 20-byte ids glued together (with a failed JWT start after each in the
     * third), "sk-a..." one long openai-shaped run. */
    static const struct {
        const char *rep;
        unsigned n;
    } rep[] = {{"eyJ-", 0},
               {"AKIA", (1 << 20) / 20},
               {"AKIA0123456789ABCDEFeyJ", (1 << 20) / 23},
               {"hf_a", 0},
               {"sk-a", 1}};
    for (size_t r = 0; r < sizeof rep / sizeof rep[0]; r++) {
        for (size_t i = 0; i < len; i++)
            big[i] = rep[r].rep[i % strlen(rep[r].rep)];
        assert_int_equal(redact_text(big, len, &out, &n, &nr), 0);
        assert_int_equal(nr, rep[r].n);
        free(out);
    }
    for (size_t i = 0; i + 16 <= len; i += 16)
        memcpy(big + i, "token=abcdefgh; ", 16);
    assert_int_equal(redact_text(big, len, &out, &n, &nr), 0);
    assert_int_equal(nr, len / 16);
    free(out);
    free(big);
}

/* Random texts built from the pieces the rules look at (fixed seed): whatever they hold, text
 * without findings is unchanged, a second pass finds nothing, and an environment made of them
 * comes out as valid UTF-8. This found keys hidden in label names and URL users. */
static void test_random(void **state)
{
    (void)state;
    static const char *const atoms[] = {"sk-ant-",
                                        "sk-",
                                        "AKIA",
                                        "AIza",
                                        "eyJ",
                                        "hf_",
                                        "ghp_",
                                        "xoxb-",
                                        "github_pat_",
                                        "token",
                                        "TOKEN",
                                        "--password",
                                        "x-api-key",
                                        "Authorization",
                                        "COOKIE",
                                        "Bearer ",
                                        "https",
                                        "=",
                                        ":",
                                        "://",
                                        "@",
                                        "/",
                                        " ",
                                        "\"",
                                        "'",
                                        "`",
                                        "$",
                                        "{",
                                        "}",
                                        ";",
                                        "&",
                                        "?",
                                        "-",
                                        "_",
                                        ".",
                                        "<secret:",
                                        ">",
                                        "\xff",
                                        "\xc3",
                                        "\xa9",
                                        "0123456789ABCDEF",
                                        "abcdefghijklmnopqrstuvwxyz",
                                        PH("url", "ab", APIK_SHA)};
    srand(20240601);
    char buf[2048];
    for (int it = 0; it < 3000; it++) {
        size_t n = 0;
        for (int k = rand() % 40; k > 0; k--) {
            const char *a = atoms[(size_t)rand() % (sizeof atoms / sizeof atoms[0])];
            size_t l = strlen(a);
            if (rand() % 8 == 0)
                a = "\0", l = 1;
            if (n + l <= sizeof buf) {
                memcpy(buf + n, a, l);
                n += l;
            }
        }
        char *o1, *o2;
        size_t n1, n2;
        unsigned r1, r2;
        assert_int_equal(redact_text(buf, n, &o1, &n1, &r1), 0);
        if (r1 == 0)
            assert_true(n1 == n && memcmp(o1, buf, n) == 0);
        assert_int_equal(redact_text(o1, n1, &o2, &n2, &r2), 0);
        if (r2 != 0 || n2 != n1 || memcmp(o1, o2, n1) != 0)
            fail_msg("not idempotent: %.*s", (int)n, buf);
        free(o1);
        free(o2);
        redact_env *e = env(buf, n);
        for (size_t i = 0; i < e->n_env; i++) {
            size_t ln = strlen(e->env[i]->name), lv = strlen(e->env[i]->value);
            assert_int_equal(redact_utf8_clean(e->env[i]->name, ln, NULL), ln);
            assert_int_equal(redact_utf8_clean(e->env[i]->value, lv, NULL), lv);
        }
        redact_env_free(e);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_provider),    cmocka_unit_test(test_names),
        cmocka_unit_test(test_fingerprint), cmocka_unit_test(test_utf8_clean),
        cmocka_unit_test(test_env_layout),  cmocka_unit_test(test_env_secrets),
        cmocka_unit_test(test_env_bounds),  cmocka_unit_test(test_text),
        cmocka_unit_test(test_text_edges),  cmocka_unit_test(test_random),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
