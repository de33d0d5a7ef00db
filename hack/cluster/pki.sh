# PKI and kubeconfigs of the local cluster, made with openssl. Sourced by
# hack/cluster-up.sh after lib.sh. Idempotent: existing keys and certificates
# are kept; serving certificates are remade when the node IP changed.
# shellcheck shell=bash

# key NAME: an ECDSA P-256 key (fast to make, accepted everywhere in Kubernetes).
key() { [[ -f $PKI/$1.key ]] || openssl ecparam -name prime256v1 -genkey -noout -out "$PKI/$1.key" 2>/dev/null; }

# cert NAME SUBJECT EXT_USAGE [SAN]: a certificate signed by the cluster CA.
cert() {
  local name=$1 subj=$2 usage=$3 san=${4:-}
  [[ -f $PKI/$name.crt ]] && return
  key "$name"
  {
    echo "basicConstraints = critical, CA:FALSE"
    echo "keyUsage = critical, digitalSignature, keyEncipherment"
    echo "extendedKeyUsage = $usage"
    [[ -z $san ]] || echo "subjectAltName = $san"
  } >"$PKI/$name.ext"
  openssl req -new -key "$PKI/$name.key" -subj "$subj" -out "$PKI/$name.csr" 2>/dev/null
  openssl x509 -req -in "$PKI/$name.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" \
    -set_serial "0x$(openssl rand -hex 16)" -days 3650 -extfile "$PKI/$name.ext" \
    -out "$PKI/$name.crt" 2>/dev/null
  rm -f "$PKI/$name.csr" "$PKI/$name.ext"
}

# kubeconfig FILE USER CERT: a kubeconfig for client certificate CERT.
kubeconfig() {
  local file=$1 user=$2 c=$3
  cat >"$file" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: kfn-local
  cluster:
    server: https://127.0.0.1:$APISERVER_PORT
    certificate-authority-data: $(base64 -w0 "$PKI/ca.crt")
users:
- name: $user
  user:
    client-certificate-data: $(base64 -w0 "$PKI/$c.crt")
    client-key-data: $(base64 -w0 "$PKI/$c.key")
contexts:
- name: kfn-local
  context:
    cluster: kfn-local
    user: $user
current-context: kfn-local
EOF
  chmod 600 "$file"
}

make_pki() {
  local ip=$1
  mkdir -p "$PKI" "$CONF"
  chmod 700 "$PKI"

  # Cluster CA: signs every certificate below and verifies client certs.
  if [[ ! -f $PKI/ca.crt ]]; then
    key ca
    openssl req -x509 -new -key "$PKI/ca.key" -subj "/CN=kfn-local-ca" -days 3650 -out "$PKI/ca.crt" \
      -config <(printf '[req]\ndistinguished_name=dn\nx509_extensions=v3\n[dn]\n[v3]\nbasicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign,digitalSignature\nsubjectKeyIdentifier=hash\n')
  fi

  # Service-account token signing key pair.
  key sa
  [[ -f $PKI/sa.pub ]] || openssl ec -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub" 2>/dev/null

  # Serving certificates name the node IP: remake them if it changed.
  if [[ $(cat "$PKI/node-ip" 2>/dev/null) != "$ip" ]]; then
    rm -f "$PKI/apiserver.crt" "$PKI/kubelet-serving.crt"
    echo "$ip" >"$PKI/node-ip"
  fi
  cert apiserver "/CN=kube-apiserver" serverAuth \
    "DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,DNS:localhost,DNS:$NODE_NAME,IP:$SERVICE_IP,IP:127.0.0.1,IP:$ip"
  cert kubelet-serving "/CN=$NODE_NAME" serverAuth "DNS:$NODE_NAME,DNS:localhost,IP:127.0.0.1,IP:$ip"

  # Client identities, each with the RBAC / Node-authorizer name Kubernetes expects.
  cert admin "/O=system:masters/CN=kfn-admin" clientAuth
  cert apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client" clientAuth
  cert controller-manager "/CN=system:kube-controller-manager" clientAuth
  cert scheduler "/CN=system:kube-scheduler" clientAuth
  cert kube-proxy "/CN=system:kube-proxy" clientAuth
  cert kubelet "/O=system:nodes/CN=system:node:$NODE_NAME" clientAuth

  kubeconfig "$KUBECONFIG_ADMIN" kfn-admin admin
  kubeconfig "$CONF/controller-manager.kubeconfig" system:kube-controller-manager controller-manager
  kubeconfig "$CONF/scheduler.kubeconfig" system:kube-scheduler scheduler
  kubeconfig "$CONF/kube-proxy.kubeconfig" system:kube-proxy kube-proxy
  kubeconfig "$CONF/kubelet.kubeconfig" "system:node:$NODE_NAME" kubelet
}
