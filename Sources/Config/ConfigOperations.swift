// The top-level keys about how the process runs rather than what it routes: "user" and
// "group" (who it serves as once started as root) and "watchConfig" (reload on file change).
extension ConfigParser {
    func operations(_ object: ConfigObject, into config: inout Config) {
        if let value = object["user"], let name = value.nonEmptyString() {
            config.user = name
            if let group = object["group"] {
                config.group = group.nonEmptyString()
            }
            if case .failure(let error) = ServiceAccount.resolve(user: name, group: config.group) {
                (error.description.hasPrefix("no group") ? object["group"] ?? value : value).error(error.description)
            } else if config.serviceAccount?.uid == 0 {
                value.warning("\"\(name)\" is root: nothing is dropped; name a dedicated unprivileged user such as \"switchyard\" (`useradd --system switchyard`)")
            }
        } else if let group = object["group"] {
            group.error("\"group\" needs \"user\"")
        }
        if let value = object["watchConfig"] { config.watchConfig = value.bool() ?? false }
    }
}
