import CollaborationService
import SwitchboardServiceKit

await ServiceCommand<CollaborationService>.start()
