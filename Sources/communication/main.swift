import CommunicationService
import SwitchboardServiceKit

await ServiceCommand<CommunicationService>.start()
