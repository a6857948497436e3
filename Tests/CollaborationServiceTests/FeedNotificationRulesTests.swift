import CollaborationService
import Foundation
import Testing

/// Which feed events become notifications, without I/O.
@Suite("Collaboration feed notification rules")
struct FeedNotificationRulesTests {
    let now = Date()

    func change(
        _ kind: InteractionChange.Kind = .created, actor: String = "desk", changed: [String] = [], facts: InteractionFacts?
    ) -> InteractionChange {
        InteractionChange(
            tenantID: "t", interactionID: UUID(), sequence: 1, kind: kind, actorID: actor, changedFields: changed, commitTime: now, facts: facts)
    }

    func call(_ direction: InteractionFacts.Direction, outcome: String = "", subject: String = "Pricing", occurredAt: Date? = nil) -> InteractionFacts
    {
        InteractionFacts(
            ownerID: "alice", isCall: true, kindName: "call", direction: direction, subject: subject, outcome: outcome, occurredAt: occurredAt)
    }

    func notice(_ change: InteractionChange) -> CallNotice? {
        FeedNotificationRules.callNotice(change, now: now, maxAge: .seconds(3600))
    }

    @Test("missed outcomes are recognised however they are spelled; others are not")
    func missed() {
        for outcome in ["missed", " Missed  Call ", "No-Answer", "no_answer", "NOANSWER", "not answered", "Unanswered"] {
            #expect(FeedNotificationRules.isMissed(outcome), "\(outcome)")
        }
        for outcome in ["", "connected", "left voicemail", "missed the point", "answered"] {
            #expect(!FeedNotificationRules.isMissed(outcome), "\(outcome)")
        }
    }

    @Test("calls: inbound or missed calls logged by someone else, missed outcomes and hand-overs notify the owner; the owner's own do not")
    func calls() {
        #expect(notice(change(facts: call(.inbound)))?.reason == .inbound)
        #expect(notice(change(facts: call(.inbound)))?.title == "Inbound call: Pricing")
        #expect(notice(change(actor: "alice", facts: call(.inbound))) == nil)
        #expect(notice(change(facts: call(.outbound))) == nil)
        #expect(notice(change(facts: call(.outbound, outcome: "no answer")))?.title == "Call not answered: Pricing")
        // What an erasure of one of the call's contacts leaves: the title without the subject.
        #expect(notice(change(facts: call(.outbound, outcome: "no answer")))?.redactedTitle == "Call not answered")
        #expect(notice(change(facts: call(.inbound, outcome: "missed", subject: "")))?.title == "Missed call")
        #expect(notice(change(.updated, changed: ["outcome"], facts: call(.outbound, outcome: "missed")))?.reason == .missed)
        #expect(notice(change(.updated, actor: "alice", changed: ["outcome"], facts: call(.outbound, outcome: "missed"))) == nil)
        #expect(notice(change(.updated, changed: ["subject"], facts: call(.inbound, outcome: "missed"))) == nil)
        #expect(notice(change(.updated, changed: ["owner_id"], facts: call(.outbound)))?.title == "Call assigned to you: Pricing")
        #expect(notice(change(.deleted, facts: call(.inbound))) == nil)
        #expect(notice(change(facts: nil)) == nil)
        var email = call(.inbound)
        email.isCall = false
        #expect(notice(change(facts: email)) == nil)
        // Old news: a call that happened before the age limit.
        #expect(notice(change(facts: call(.inbound, occurredAt: now.addingTimeInterval(-7200)))) == nil)
        #expect(notice(change(facts: call(.inbound, occurredAt: now.addingTimeInterval(86_400))))?.reason == .inbound)
    }

    @Test("follow-ups: full payloads set the follow-up; private stubs keep it unless its fields changed out of sight")
    func followUps() {
        let due = now.addingTimeInterval(60)
        var facts = InteractionFacts(ownerID: "alice", isCall: false, kindName: "email", direction: .outbound, subject: "Quote", followUpAt: due)
        #expect(
            FeedNotificationRules.followUpPlan(change(facts: facts))
                == .set(owner: "alice", due: due, done: false, deleted: false, title: "Follow up: Quote"))
        #expect(
            FeedNotificationRules.followUpPlan(change(.deleted, facts: facts))
                == .set(owner: "alice", due: due, done: false, deleted: true, title: "Follow up: Quote"))
        facts.subject = "  \n"
        guard case .set(_, _, _, _, let title) = FeedNotificationRules.followUpPlan(change(facts: facts)) else {
            Issue.record("not a set")
            return
        }
        #expect(title == "Follow up on your email")
        facts.subject = String(repeating: "é", count: 300)
        guard case .set(_, _, _, _, let long) = FeedNotificationRules.followUpPlan(change(facts: facts)) else {
            Issue.record("not a set")
            return
        }
        #expect(long.utf8.count <= 200 && long.hasPrefix("Follow up: é"))
        #expect(FeedNotificationRules.followUpPlan(change(.updated, changed: ["visibility"], facts: nil)) == .unchanged)
        #expect(FeedNotificationRules.followUpPlan(change(.updated, changed: ["subject", "follow_up_done"], facts: nil)) == .unknown)
        #expect(FeedNotificationRules.followUpPlan(change(.deleted, facts: nil)) == .setDeleted(true))
        #expect(FeedNotificationRules.followUpPlan(change(.undeleted, facts: nil)) == .setDeleted(false))
        #expect(FeedNotificationRules.followUpPlan(change(.created, facts: nil)) == .unchanged)
    }

    @Test("alerts: the creator is told which alert fired for which contact, with the value and the threshold")
    func alerts() {
        let contact = UUID()
        let data = FeedNotificationRules.alertNotification(
            AlertNotice(
                tenantID: "t", firingID: "f", ownerID: "mgr", contactID: contact, alertName: "Cooling", metricName: "engagement score",
                value: 2.5, threshold: 3, firedAt: now, commitTime: now))
        #expect(data.kind == .alert && data.audience == .users(["mgr"]))
        #expect(data.title == "Alert \"Cooling\" fired" && data.body == "engagement score: 2.5 (threshold 3)")
        #expect(data.resourceType == "switchboard.contacts.v1.Contact" && data.resourceID == contact.uuidString.lowercased())
        #expect(FeedNotificationRules.isTimely([now.addingTimeInterval(-10), nil], now: now, maxAge: .seconds(60)))
        #expect(!FeedNotificationRules.isTimely([now.addingTimeInterval(-61)], now: now, maxAge: .seconds(60)))
    }
}
