# Sourced by the Dockerfile's build stages (never the final ones): trust the extra CA
# certificates in hack/build-ca/*.crt (a TLS-inspecting proxy's) for this RUN only, and point
# uv at the environment the image ships (/opt/kubetune) and the image's own Python.
if ls /etc/kubetune-build-ca/*.crt >/dev/null 2>&1; then
  cat /etc/ssl/certs/ca-certificates.crt /etc/kubetune-build-ca/*.crt >/tmp/build-ca.pem 2>/dev/null || true
  export SSL_CERT_FILE=/tmp/build-ca.pem
fi
export VIRTUAL_ENV=/opt/kubetune UV_PYTHON_DOWNLOADS=never UV_NO_CACHE=1 UV_LINK_MODE=copy UV_COMPILE_BYTECODE=1

# The project itself (not its dependencies), installed into /opt/kubetune and copied under
# /project with the same paths, so a final stage can add it as a small layer of its own on top
# of the dependencies' (a source edit then rebuilds megabytes, not the training stack's GBs).
install_project() {
  touch README.md  # pyproject's readme, empty: no rebuild on every README edit
  uv pip install --no-deps .
  site=$(/opt/kubetune/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  mkdir -p "/project$site" /project/opt/kubetune/bin
  cp -a "$site"/kubetune "$site"/kubetune_trainer "$site"/kubetune_api "$site"/kubetune-*.dist-info "/project$site/"
  cp -a /opt/kubetune/bin/kubetune /project/opt/kubetune/bin/
}
