import AnalyticsService
import SwitchboardServiceKit

await ServiceCommand<AnalyticsService>.start()
