import OrganizationService
import SwitchboardServiceKit

await ServiceCommand<OrganizationService>.start()
