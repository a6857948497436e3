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
# The first call of a service as the idle-memory measurements and scripts/startup-order.sh make it: a read of an id no
# row has (string field 1 or 2 = a UUID; analytics' subject type 1 = CONTACT), through authentication, the handler and
# one database round trip. Prints "<path> <hex of the request message>".
service_probe() {
    local idhex
    idhex="$(printf %s 00000000-0000-0000-0000-000000000001 | od -An -tx1 | tr -d ' \n')"
    case "$1" in
    contacts) echo "/switchboard.contacts.v1.ContactsService/GetContact 0a24$idhex" ;;
    organization) echo "/switchboard.organization.v1.OrganizationService/GetOrganization 0a24$idhex" ;;
    communication) echo "/switchboard.communication.v1.CommunicationService/ListInteractions 1224$idhex" ;;
    collaboration) echo "/switchboard.collaboration.v1.CollaborationService/GetNote 0a24$idhex" ;;
    analytics) echo "/switchboard.analytics.v1.AnalyticsService/GetTimeline 08011224$idhex" ;;
    *) echo "no probe for $1 (scripts/services.sh, service_probe)" >&2; return 1 ;;
    esac
}
