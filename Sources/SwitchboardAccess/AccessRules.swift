import SwitchboardProtos
import SwitchboardRPC
import SwitchboardRuntime

/// The lowest role each RPC of the five services is open to: one table, read by each service's auth interceptor and
/// by the gateway, which answers 403 for a role too weak without calling the service (the service checks again). An
/// RPC missing from its table is open to no role.
public enum AccessRules {
    /// The contacts service's RPCs.
    public static let contacts: [MethodDescriptor: Role] = {
        typealias M = Switchboard_Contacts_V1_ContactsService.Method
        return [
            M.createContact: .user, M.batchCreateContacts: .user, M.updateContact: .user, M.deleteContact: .user, M.batchUpdateContacts: .user,
            M.batchDeleteContacts: .user, M.undeleteContact: .user, M.mergeContacts: .user, M.unmergeContact: .user,
            M.findDuplicateContacts: .readOnly,
            M.getContact: .readOnly, M.batchGetContacts: .readOnly, M.lookupContacts: .readOnly, M.listContacts: .readOnly,
            M.searchContacts: .readOnly, M.getSavedSearch: .readOnly, M.listSavedSearches: .readOnly, M.createSavedSearch: .user,
            M.deleteSavedSearch: .user, M.bulkTagContacts: .user,
            M.watchChanges: .readOnly, M.importContacts: .user, M.exportContacts: .readOnly,
            M.listFieldDefinitions: .readOnly, M.defineField: .admin, M.retireField: .admin,
            M.eraseContact: .admin, M.getErasure: .admin, M.listErasures: .admin,
            M.createRelationship: .user, M.updateRelationship: .user, M.deleteRelationship: .user, M.listRelationships: .readOnly,
            M.getRelatedContacts: .readOnly,
        ]
    }()

    /// The organization service's RPCs.
    public static let organization: [MethodDescriptor: Role] = {
        typealias M = Switchboard_Organization_V1_OrganizationService.Method
        return [
            M.createOrganization: .user, M.updateOrganization: .user, M.deleteOrganization: .user, M.undeleteOrganization: .user,
            M.getOrganization: .readOnly, M.batchGetOrganizations: .readOnly, M.listOrganizations: .readOnly,
            M.defineField: .admin, M.retireField: .admin, M.listFieldDefinitions: .readOnly,
            M.streamOrganizationTree: .readOnly, M.listAncestors: .readOnly,
            M.createUnit: .user, M.updateUnit: .user, M.deleteUnit: .user, M.undeleteUnit: .user, M.getUnit: .readOnly,
            M.listUnits: .readOnly,
            M.defineMembershipRole: .admin, M.listMembershipRoles: .readOnly, M.createMembership: .user, M.updateMembership: .user,
            M.deleteMembership: .user, M.getMembership: .readOnly, M.listOrganizationMembers: .readOnly,
            M.listContactMemberships: .readOnly,
            M.createGroup: .user, M.updateGroup: .user, M.deleteGroup: .user, M.undeleteGroup: .user, M.addGroupMembers: .user,
            M.removeGroupMembers: .user, M.getGroup: .readOnly, M.listGroups: .readOnly, M.listGroupMembers: .readOnly,
            M.listContactGroups: .readOnly, M.getContactSummary: .readOnly,
            M.watchChanges: .readOnly, M.exportSubject: .admin,
        ]
    }()

    /// The communication service's RPCs.
    public static let communication: [MethodDescriptor: Role] = {
        typealias M = Switchboard_Communication_V1_CommunicationService.Method
        return [
            M.logInteraction: .user, M.updateInteraction: .user, M.deleteInteraction: .user, M.undeleteInteraction: .user,
            M.getInteraction: .readOnly, M.listInteractions: .readOnly, M.searchInteractions: .readOnly, M.listFollowUpsDue: .readOnly,
            M.recordConsent: .user, M.listConsentHistory: .readOnly, M.checkConsent: .readOnly, M.getContactSummary: .readOnly,
            M.getContactPreferences: .readOnly, M.updateContactPreferences: .user,
            M.createTemplate: .user, M.updateTemplate: .user, M.getTemplate: .readOnly, M.listTemplates: .readOnly,
            M.renderTemplate: .readOnly,
            M.sendMessage: .user, M.getSend: .readOnly, M.listSends: .readOnly, M.cancelSend: .user, M.exportSubject: .admin,
            M.createCampaign: .user, M.getCampaign: .readOnly, M.listCampaigns: .readOnly, M.listCampaignRecipients: .readOnly,
            M.pauseCampaign: .user, M.resumeCampaign: .user, M.cancelCampaign: .user,
            M.watchCampaignProgress: .readOnly,
            M.watchChanges: .readOnly,
        ]
    }()

    /// The collaboration service's RPCs.
    public static let collaboration: [MethodDescriptor: Role] = {
        typealias M = Switchboard_Collaboration_V1_CollaborationService.Method
        return [
            M.createNote: .user, M.getNote: .readOnly, M.updateNote: .user, M.deleteNote: .user, M.undeleteNote: .user,
            M.listNotes: .readOnly,
            M.createComment: .user, M.updateComment: .user, M.deleteComment: .user, M.listComments: .readOnly,
            M.createTeam: .manager, M.updateTeam: .manager, M.getTeam: .readOnly, M.listTeams: .readOnly, M.addTeamMembers: .manager,
            M.removeTeamMembers: .manager,
            M.shareNote: .user, M.revokeGrant: .user, M.listGrants: .readOnly,
            M.createNotification: .user, M.listNotifications: .readOnly, M.subscribeNotifications: .readOnly,
            M.markNotificationsRead: .readOnly, M.acknowledgeNotifications: .readOnly, M.getNotificationPreferences: .readOnly,
            M.setNotificationPreferences: .readOnly,
            M.uploadFile: .user, M.deleteFile: .user, M.undeleteFile: .user, M.downloadFile: .readOnly, M.getFile: .readOnly,
            M.listFiles: .readOnly,
            M.createMeeting: .user, M.getMeeting: .readOnly, M.updateMeeting: .user, M.deleteMeeting: .user, M.undeleteMeeting: .user,
            M.cancelOccurrence: .user, M.moveOccurrence: .user, M.restoreOccurrence: .user,
            M.listMeetings: .readOnly, M.findFreeSlots: .readOnly, M.getContactSummary: .readOnly,
            M.watchChanges: .readOnly, M.exportSubject: .admin,
        ]
    }()

    /// The analytics service's RPCs.
    public static let analytics: [MethodDescriptor: Role] = {
        typealias M = Switchboard_Analytics_V1_AnalyticsService.Method
        return [
            M.getTimeline: .readOnly, M.watchTimeline: .readOnly, M.getContactMetrics: .readOnly, M.getActivityStats: .readOnly,
            M.getContactSummary: .readOnly,
            M.getLifecycleFunnel: .readOnly, M.listTop: .readOnly, M.getDataCompleteness: .readOnly,
            M.getScoringModel: .readOnly, M.setScoringModel: .manager, M.getEngagementScore: .readOnly,
            M.createReport: .user, M.getReport: .readOnly, M.listReports: .readOnly, M.deleteReport: .user, M.runReport: .readOnly,
            M.exportReport: .readOnly,
            M.createDashboard: .user, M.getDashboard: .readOnly, M.getDashboardData: .readOnly,
            M.createAlert: .manager, M.listAlerts: .readOnly, M.deleteAlert: .manager,
            M.watchChanges: .readOnly, M.exportSubject: .admin,
        ]
    }()

    /// Every table, by method path (`/package.Service/Method`).
    public static let byPath: [String: Role] = {
        var all: [String: Role] = [:]
        for table in [contacts, organization, communication, collaboration, analytics] {
            for (method, role) in table { all[method.path] = role }
        }
        return all
    }()
}
