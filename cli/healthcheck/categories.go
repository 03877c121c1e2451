package healthcheck

// PreInstallCategories are the checks of `linkerd check --pre`: can the
// control plane be installed on this cluster by this user.
func PreInstallCategories() []Category {
	return []Category{
		kubernetesAPICategory(),
		kubernetesVersionCategory(),
		preKubernetesSetupCategory(),
		linkerdVersionCategory(),
	}
}

// ControlPlaneCategories are the checks of `linkerd check`: is the control
// plane installed, healthy and sound.
func ControlPlaneCategories() []Category {
	return []Category{
		kubernetesAPICategory(),
		kubernetesVersionCategory(),
		linkerdExistenceCategory(),
		linkerdConfigCategory(),
		linkerdIdentityCategory(),
		linkerdWebhooksCategory(),
		linkerdVersionCategory(),
		controlPlaneVersionCategory(),
		linkerdControlPlaneProxyCategory(),
		linkerdPolicyCategory(),
	}
}

// DataPlaneCategories are the checks of `linkerd check --proxy`: the
// control plane's, then the meshed pods' of State.DataPlaneNamespace (or of
// every namespace).
func DataPlaneCategories() []Category {
	return append(ControlPlaneCategories(), linkerdDataPlaneCategory(), linkerdIdentityDataPlaneCategory())
}
