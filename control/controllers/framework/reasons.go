package framework

// Event reasons every controller that makes and removes objects for
// another (pods of a ReplicaSet, DaemonSet, StatefulSet or Job; Jobs of a
// CronJob) records on the owner, as Kubernetes' controllers do. A
// controller's own reasons (ScalingReplicaSet, Completed...) stay in its
// package.
const (
	ReasonSuccessfulCreate = "SuccessfulCreate"
	ReasonSuccessfulDelete = "SuccessfulDelete"
	ReasonFailedCreate     = "FailedCreate"
	ReasonFailedDelete     = "FailedDelete"
)
