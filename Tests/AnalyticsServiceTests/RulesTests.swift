import AnalyticsService
import Foundation
import Testing

/// Pure rules: the score's decay, CSV lines, report definitions.
@Suite("Analytics: rules")
struct RulesTests {
    @Test("an activity one half-life old weighs half; a future one weighs fully")
    func decay() {
        #expect(abs(AnalyticsRules.decay(ageSeconds: 30 * 86_400, halfLifeDays: 30) - 0.5) < 1e-12)
        #expect(AnalyticsRules.decay(ageSeconds: -100, halfLifeDays: 30) == 1)
    }

    @Test("CSV quotes fields with commas, quotes and line breaks")
    func csv() {
        #expect(ReportSpec.csvLine(["a", "b,c", "say \"hi\"", "x\ny"]) == "a,\"b,c\",\"say \"\"hi\"\"\",\"x\ny\"\r\n")
    }
}
