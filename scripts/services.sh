# Sourced by the scripts that act on every service: reads services/index into SERVICE_NAMES and, per service,
# SERVICE_GRPC_PORT[name] and SERVICE_ADMIN_PORT[name].
declare -a SERVICE_NAMES=()
declare -A SERVICE_GRPC_PORT=() SERVICE_ADMIN_PORT=()
while read -r name grpc admin; do
    [ -z "$name" ] || [ "${name:0:1}" = "#" ] && continue
    SERVICE_NAMES+=("$name")
    SERVICE_GRPC_PORT[$name]=$grpc
    SERVICE_ADMIN_PORT[$name]=$admin
done < "$(dirname "${BASH_SOURCE[0]}")/../services/index"
# The environment-variable prefix of a service's overrides in the scripts, e.g. SWITCHBOARD_CONTACTS.
service_var() { echo "SWITCHBOARD_$(echo "$1" | tr 'a-z-' 'A-Z_')"; }
