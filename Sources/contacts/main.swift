import ContactsService
import SwitchboardServiceKit

await ServiceCommand<ContactsService>.start()
