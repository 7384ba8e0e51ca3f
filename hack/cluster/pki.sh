#!/usr/bin/env bash
# Generates the test cluster's PKI (one CA) and kubeconfigs with embedded data.
# Idempotent: existing files are kept, so restarts keep the same identities.
. "$(dirname "$0")/lib.sh"
mkdir -p "$PKI" "$CONF"; cd "$PKI"

gen_key() { [ -f "$1.key" ] || openssl genrsa -out "$1.key" 2048 2>/dev/null; }

# sign NAME SUBJECT EKU [SAN]
sign() {
  local name=$1 subj=$2 eku=$3 san=${4:-}
  [ -f "$name.crt" ] && return
  gen_key "$name"
  openssl req -new -key "$name.key" -subj "$subj" -out "$name.csr" 2>/dev/null
  local ext; ext=$(mktemp)
  { echo "basicConstraints=CA:FALSE"; echo "keyUsage=critical,digitalSignature,keyEncipherment"; echo "extendedKeyUsage=$eku"
    [ -n "$san" ] && echo "subjectAltName=$san"; } > "$ext"
  openssl x509 -req -in "$name.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 -sha256 \
    -extfile "$ext" -out "$name.crt" 2>/dev/null
  rm -f "$ext" "$name.csr"
}

if [ ! -f ca.crt ]; then
  gen_key ca
  openssl req -x509 -new -key ca.key -subj "/CN=oddjob-local-ca" -days 3650 -sha256 \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" \
    -out ca.crt 2>/dev/null
fi
sign apiserver "/CN=kube-apiserver" serverAuth \
  "DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,DNS:localhost,IP:127.0.0.1,IP:$NODE_IP,IP:$SVC_IP"
# system:masters: the apiserver may proxy logs/exec/attach to the kubelet without an extra binding.
sign apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client" clientAuth
sign admin "/O=system:masters/CN=oddjob-admin" clientAuth
sign kcm "/CN=system:kube-controller-manager" clientAuth
sign scheduler "/CN=system:kube-scheduler" clientAuth
sign kubelet-client "/O=system:nodes/CN=system:node:$NODE_NAME" clientAuth
sign kube-proxy "/CN=system:kube-proxy" clientAuth
sign kube-router "/CN=system:kube-router" clientAuth
sign kubelet "/CN=$NODE_NAME" serverAuth "DNS:$NODE_NAME,IP:$NODE_IP,IP:127.0.0.1"
[ -f sa.key ] || { openssl genrsa -out sa.key 2048 2>/dev/null; openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null; }
chmod 600 ./*.key

b64() { base64 -w0 < "$1"; }
# kubeconfig NAME CERT [SERVER]
kubeconfig() {
  local out=$1 cert=$2 server=${3:-https://127.0.0.1:$APISERVER_PORT}
  cat > "$out" <<KC
apiVersion: v1
kind: Config
clusters:
- name: oddjob-local
  cluster:
    server: $server
    certificate-authority-data: $(b64 ca.crt)
users:
- name: $cert
  user:
    client-certificate-data: $(b64 "$cert.crt")
    client-key-data: $(b64 "$cert.key")
contexts:
- name: oddjob-local
  context: {cluster: oddjob-local, user: $cert}
current-context: oddjob-local
KC
  chmod 600 "$out"
}
kubeconfig "$CONF/kcm.kubeconfig" kcm
kubeconfig "$CONF/scheduler.kubeconfig" scheduler
kubeconfig "$CONF/kubelet.kubeconfig" kubelet-client "https://$NODE_IP:$APISERVER_PORT"
kubeconfig "$CONF/kube-proxy.kubeconfig" kube-proxy "https://$NODE_IP:$APISERVER_PORT"
kubeconfig "$CONF/kube-router.kubeconfig" kube-router "https://$NODE_IP:$APISERVER_PORT"
kubeconfig "$ADMIN_KUBECONFIG" admin
