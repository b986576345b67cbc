#!/bin/sh
# make-certs.sh OUTDIR NAME... — the TLS certificates of the demo's local internet.
#
# `ptb demo` (and tests/integration/test_hubs.py) run tests/scenarios/hubs.py as huggingface.co,
# api.openai.com and api.anthropic.com inside the sandbox. For the scripted agents' curl and
# Python to talk to it with verification on, the sandbox trusts a test CA made here:
#
#   OUTDIR/ca.pem, ca.key          "ptb demo test CA": self-signed, CA:TRUE, 10 years, EC P-256
#   OUTDIR/server.pem, server.key  signed by that CA: subjectAltName DNS:NAME (IP:NAME for an
#                                  IPv4 address) for every NAME, serverAuth, 825 days (the most
#                                  that strict clients such as Apple's and Chrome's accept)
#
# Idempotent: an existing CA is kept, and an existing server certificate is kept when it is
# signed by that CA, covers every NAME, matches its key and is valid for at least another day;
# otherwise it is made again. Keys are created mode 600. Needs the openssl CLI.
set -eu

die() { echo "make-certs.sh: $*" >&2; exit 1; }
[ $# -ge 2 ] || die "usage: make-certs.sh OUTDIR NAME..."
command -v openssl >/dev/null 2>&1 || die "openssl not found (Debian: apt-get install openssl)"

out=$1
shift
for n in "$@"; do
    case $n in
    '' | *[!A-Za-z0-9.*-]* | .* | *.) die "not a host name: '$n'" ;;
    esac
done
mkdir -p "$out"
tmp=$(mktemp -d "$out/.make-certs.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM

is_ipv4() { echo "$1" | grep -Eq '^[0-9]{1,3}(\.[0-9]{1,3}){3}$'; }

# The CA: made once. Written under tmp, then moved, so that a crash leaves no half CA.
if [ ! -s "$out/ca.pem" ] || [ ! -s "$out/ca.key" ]; then
    cat >"$tmp/ca.cnf" <<'EOF'
[req]
distinguished_name = dn
x509_extensions = v3_ca
prompt = no
[dn]
CN = ptb demo test CA
O = ptb
[v3_ca]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
EOF
    (umask 077 && openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
        -out "$tmp/ca.key" 2>/dev/null)
    openssl req -new -x509 -config "$tmp/ca.cnf" -key "$tmp/ca.key" -sha256 -days 3650 \
        -set_serial "0x$(openssl rand -hex 16)" -out "$tmp/ca.pem"
    mv "$tmp/ca.key" "$out/ca.key"
    mv "$tmp/ca.pem" "$out/ca.pem"
    rm -f "$out/server.pem" # signed by a CA that is gone
fi

# Is the server certificate there, the CA's, for every name, its key's, and valid tomorrow?
server_ok() {
    [ -s "$out/server.pem" ] && [ -s "$out/server.key" ] || return 1
    openssl verify -CAfile "$out/ca.pem" "$out/server.pem" >/dev/null 2>&1 || return 1
    openssl x509 -in "$out/server.pem" -noout -checkend 86400 >/dev/null 2>&1 || return 1
    [ "$(openssl x509 -in "$out/server.pem" -noout -pubkey | openssl sha256)" = \
        "$(openssl pkey -in "$out/server.key" -pubout | openssl sha256)" ] || return 1
    for n in "$@"; do
        if is_ipv4 "$n"; then
            openssl x509 -in "$out/server.pem" -noout -checkip "$n" | grep -q 'does match'
        else
            openssl x509 -in "$out/server.pem" -noout -checkhost "$n" | grep -q 'does match'
        fi || return 1
    done
}
if server_ok "$@"; then
    exit 0
fi

san=
for n in "$@"; do
    if is_ipv4 "$n"; then e="IP:$n"; else e="DNS:$n"; fi
    san=${san:+$san,}$e
done
cat >"$tmp/server.ext" <<EOF
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = $san
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid, issuer
EOF
(umask 077 && openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
    -out "$tmp/server.key" 2>/dev/null)
openssl req -new -key "$tmp/server.key" -subj "/O=ptb/CN=$1" -out "$tmp/server.csr"
openssl x509 -req -in "$tmp/server.csr" -CA "$out/ca.pem" -CAkey "$out/ca.key" -sha256 \
    -days 825 -set_serial "0x$(openssl rand -hex 16)" -extfile "$tmp/server.ext" \
    -out "$tmp/server.pem" 2>"$tmp/x509.err" || { cat "$tmp/x509.err" >&2; die "signing failed"; }
mv "$tmp/server.key" "$out/server.key"
mv "$tmp/server.pem" "$out/server.pem"
server_ok "$@" || die "the new server certificate does not verify (openssl $(openssl version))"
