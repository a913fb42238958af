import AtriumKubernetes
import Testing

/// The API server's rules for quantities, label keys and values, and object names
/// (apimachinery's resource.ParseQuantity, IsQualifiedName, IsValidLabelValue, IsDNS1123Subdomain).
@Suite("Kubernetes validation rules")
struct KubernetesValidationTests {
    @Test("quantities", arguments: [
        ("250m", true), ("0.5", true), ("2", true), ("512Mi", true), ("2Gi", true), ("1.5Gi", true), ("1e3", true), ("1E-3", true),
        ("+1k", true), ("100n", true), (".5", true), ("2GB", false), ("2gi", false), ("half", false), ("", false), ("1..5", false),
        ("10 Gi", false), ("Gi", false), ("1e", false), ("-1", false), ("1Mib", false),
    ])
    func quantities(text: String, valid: Bool) {
        #expect((KubernetesValidation.quantityProblem(text) == nil) == valid, "\(text)")
    }

    @Test("label keys", arguments: [
        ("app", true), ("app.kubernetes.io/name", true), ("cloud.google.com/gke-nodepool", true), ("a_b.c-d", true),
        ("-app", false), ("app-", false), ("Example.com/app", false), ("a/b/c", false), ("/app", false), ("", false),
        (String(repeating: "a", count: 64), false), ("bad key", false),
    ])
    func keys(text: String, valid: Bool) {
        #expect((KubernetesValidation.qualifiedNameProblem(text) == nil) == valid, "\(text)")
    }

    @Test("label values", arguments: [
        ("", true), ("students", true), ("v1.2_3-x", true), ("gpu nodes", false), ("-x", false), ("x.", false),
        (String(repeating: "a", count: 64), false),
    ])
    func values(text: String, valid: Bool) {
        #expect((KubernetesValidation.labelValueProblem(text) == nil) == valid, "\(text)")
    }

    @Test("object names", arguments: [
        ("fast-ssd", true), ("standard.rwo", true), ("Fast", false), ("fast_ssd", false), ("-fast", false), ("", false),
    ])
    func subdomains(text: String, valid: Bool) {
        #expect((KubernetesValidation.subdomainProblem(text) == nil) == valid, "\(text)")
    }
}
