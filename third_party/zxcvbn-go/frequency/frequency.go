package frequency

import (
	"encoding/json"
	"log"
	"sync"

	"github.com/ccojocar/zxcvbn-go/data"
)

// List holds a frequency list
type List struct {
	Name string
	List []string
}

// Lists holds all the frequency list in a map, filled by Load.
var Lists = make(map[string]List)

var loadOnce sync.Once

// Load fills Lists, once. usersvc fork: upstream did this in init, which
// cost every process that links the package (every usersvc command) about
// 100 ms of start-up and 10 MB, even when it never scores a password.
func Load() {
	loadOnce.Do(func() {
		Lists["MaleNames"] = getStringListFromAsset(getAsset("data/MaleNames.json"), "MaleNames")
		Lists["FemaleNames"] = getStringListFromAsset(getAsset("data/FemaleNames.json"), "FemaleNames")
		Lists["Surname"] = getStringListFromAsset(getAsset("data/Surnames.json"), "Surname")
		Lists["English"] = getStringListFromAsset(getAsset("data/English.json"), "English")
		Lists["Passwords"] = getStringListFromAsset(getAsset("data/Passwords.json"), "Passwords")
	})
}

func getAsset(name string) []byte {
	data, err := data.Asset(name)
	if err != nil {
		panic("Error getting asset " + name)
	}

	return data
}

func getStringListFromAsset(data []byte, name string) List {
	var tempList List
	err := json.Unmarshal(data, &tempList)
	if err != nil {
		log.Fatal(err)
	}
	tempList.Name = name
	return tempList
}
